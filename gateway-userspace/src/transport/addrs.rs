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
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(digits.format(octet).as_bytes());
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            write!(out, "{v6}").expect("writing to a Vec does not fail");
        }
    }
}
