//! Unit tests of `gateway suggest`: log lines in, proposal out, and the
//! proposal judged by the loader and decided by the policy.

mod emit;
mod live;
mod observed;
mod plan;
mod steering;
mod wildcard;

use super::{Observed, PlanOptions, to_yaml};

/// A denied connection line as `gateway run` writes it.
pub(super) fn denied(namespace: &str, protocol: &str, name: Option<&str>, orig_dst: &str, time: &str) -> String {
    let (sni, host) = match protocol {
        "tls" => (name, None),
        _ => (None, name),
    };
    serde_json::json!({
        "time": time, "event": "connection", "role": "node", "src": "198.18.1.2:40000",
        "orig_dst": orig_dst, "workload": {"namespace": namespace, "name": null, "service_account": null},
        "protocol": protocol, "sni": sni, "host": host, "decision": "deny", "reason": "not-registered",
        "matched": null, "upstream": null, "outcome": "denied", "bytes_up": 0, "bytes_down": 0, "duration_ms": 1
    })
    .to_string()
}

/// A denied HTTP request line.
pub(super) fn denied_request(namespace: &str, host: &str, orig_dst: &str, time: &str) -> String {
    serde_json::json!({
        "time": time, "event": "request", "role": "node", "src": "198.18.1.2:40000", "orig_dst": orig_dst,
        "workload": {"namespace": namespace, "name": null, "service_account": null},
        "method": "GET", "host": host, "path": "/", "decision": "deny", "reason": "not-registered",
        "matched": null, "upstream": null, "status": 403, "flags": "-", "duration_ms": 0
    })
    .to_string()
}

/// The proposal for `lines`.
pub(super) fn suggest(lines: &[String], opts: &PlanOptions) -> String {
    let mut observed = Observed::default();
    lines.iter().for_each(|l| observed.add_line(l, None));
    to_yaml(&super::plan(&observed, opts)).expect("the proposal serialises")
}
