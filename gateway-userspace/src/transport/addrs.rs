//! Address newtypes for the outbound path.

use std::{fmt, net::SocketAddr};

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
