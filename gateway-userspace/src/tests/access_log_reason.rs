//! Tests of `access_log_reason.rs`.

use crate::access_log::{Reason, ResponseFlag};
use crate::policy::{AllowReason, DenyReason};

#[test]
fn reasons_and_flags_are_written_as_their_names() {
    let reasons = [
        Reason::Undecided,
        AllowReason::RegisteredHost.into(),
        DenyReason::PortNotRegistered.into(),
        "no-route".into(),
    ];
    let written: Vec<String> = reasons.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
    assert_eq!(written, ["\"\"", "\"registered-host\"", "\"port-not-registered\"", "\"no-route\""]);
    let flags = [ResponseFlag::NoRoute, ResponseFlag::UpstreamOverflow, ResponseFlag::DelayInjected];
    assert_eq!(flags.map(ResponseFlag::as_str), ["NR", "UO", "DI"]);
}
