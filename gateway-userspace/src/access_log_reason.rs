//! What an audit line says about why: the policy's reasons and Envoy's
//! response flags, typed until the line is written (and the metric
//! counted).

use serde::Serialize;

use crate::policy::{AllowReason, DenyReason};

/// Why a connection, request or query ended as it did. A policy verdict's
/// reason stays typed until the line is written (and the metric counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reason {
    /// Not decided yet.
    #[default]
    Undecided,
    Allow(AllowReason),
    Deny(DenyReason),
    /// What the proxy or the gateway role decided on its own: `no-route`,
    /// `client-closed`, `revoked`, `tls-handshake-failed`…
    Proxy(&'static str),
}

impl Reason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Undecided => "",
            Reason::Allow(r) => r.as_str(),
            Reason::Deny(r) => r.as_str(),
            Reason::Proxy(r) => r,
        }
    }
}

impl From<AllowReason> for Reason {
    fn from(r: AllowReason) -> Self {
        Reason::Allow(r)
    }
}

impl From<DenyReason> for Reason {
    fn from(r: DenyReason) -> Self {
        Reason::Deny(r)
    }
}

impl From<&'static str> for Reason {
    fn from(r: &'static str) -> Self {
        Reason::Proxy(r)
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Envoy's response flags on a request line, typed until it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFlag {
    /// `NR`: no route.
    NoRoute,
    /// `UF`: upstream connection failure.
    UpstreamConnectionFailure,
    /// `UT`: upstream request timeout.
    UpstreamRequestTimeout,
    /// `UO`: upstream overflow (circuit breaking).
    UpstreamOverflow,
    /// `UH`: no healthy upstream.
    NoHealthyUpstream,
    /// `FI`: fault injected (abort).
    FaultInjected,
    /// `DI`: delay injected.
    DelayInjected,
}

impl ResponseFlag {
    pub const fn as_str(self) -> &'static str {
        match self {
            ResponseFlag::NoRoute => "NR",
            ResponseFlag::UpstreamConnectionFailure => "UF",
            ResponseFlag::UpstreamRequestTimeout => "UT",
            ResponseFlag::UpstreamOverflow => "UO",
            ResponseFlag::NoHealthyUpstream => "UH",
            ResponseFlag::FaultInjected => "FI",
            ResponseFlag::DelayInjected => "DI",
        }
    }
}
