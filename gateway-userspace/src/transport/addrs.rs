//! Address newtypes for the outbound path, and an address written as text
//! without the formatter.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
};

macro_rules! addr_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub SocketAddr);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }
    };
}

addr_newtype!(
    /// The intercepted workload's address, as the proxy sees it.
    ClientAddr
);
addr_newtype!(
    /// Where the workload's `connect()` was meant to go.
    OrigDstAddr
);
addr_newtype!(
    /// The proxy listener the connection arrived on.
    ProxyAddr
);
addr_newtype!(
    /// Where the proxy actually connected.
    UpstreamAddr
);

/// Appends `ip` as its `Display` writes it. An IPv4 address is written
/// octet by octet, without the formatter: this runs for every request's
/// audit line and `x-forwarded-for`.
pub fn write_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Written on the stack, then appended at once.
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            out.extend_from_slice(&text[..len]);
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            write!(out, "{v6}").expect("writing to a Vec does not fail");
        }
    }
}
