//! The gateway's stdout: exactly one JSON object per line, one `connection` event per proxied
//! connection, written when the connection closes.

use std::net::SocketAddr;

use serde_json::Value;

use crate::addresses::canonical;

/// One `"event":"connection"` line.
#[derive(Debug, Clone)]
pub struct ConnectionEvent {
    pub src: SocketAddr,
    /// The original destination, canonical (an IPv4-mapped address is shown as IPv4);
    /// `None` when the line has none (an unknown original destination).
    pub orig_dst: Option<SocketAddr>,
    pub upstream: Option<SocketAddr>,
    pub cgroup_id: Option<u64>,
    pub pid: Option<u64>,
    pub decision: String,
    pub reason: String,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duration_ms: u64,
    /// The whole line, for messages.
    pub raw: String,
}

/// Parses the gateway's stdout. Every non-empty line must be a JSON object with an `event`;
/// a line that is not is a failure of the gateway's contract, so this panics naming it.
/// Returns the `connection` events in order.
pub fn parse_connection_events(stdout: &str) -> Vec<ConnectionEvent> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("gateway stdout has a line that is not JSON ({e}): {line}")
            });
            match v["event"].as_str() {
                Some("connection") => Some(parse_connection(&v, line)),
                Some(_) => None,
                None => panic!("gateway stdout has a JSON line without \"event\": {line}"),
            }
        })
        .collect()
}

fn parse_connection(v: &Value, line: &str) -> ConnectionEvent {
    let addr = |key: &str| -> Option<SocketAddr> {
        match &v[key] {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(canonical(s.parse().unwrap_or_else(|e| {
                panic!("gateway log field {key} is not an address ({e}): {line}")
            }))),
            other => panic!("gateway log field {key} is not a string: {other} in {line}"),
        }
    };
    let text = |key: &str| -> String {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("gateway log line lacks string field {key}: {line}"))
            .to_owned()
    };
    let count = |key: &str| -> u64 {
        v[key]
            .as_u64()
            .unwrap_or_else(|| panic!("gateway log line lacks numeric field {key}: {line}"))
    };
    if v["time"].as_str().is_none_or(str::is_empty) {
        panic!("gateway log line lacks \"time\": {line}");
    }
    ConnectionEvent {
        src: addr("src").unwrap_or_else(|| panic!("gateway log line lacks src: {line}")),
        orig_dst: addr("orig_dst"),
        upstream: addr("upstream"),
        cgroup_id: v["cgroup_id"].as_u64(),
        pid: v["pid"].as_u64(),
        decision: text("decision"),
        reason: v["reason"].as_str().unwrap_or_default().to_owned(),
        bytes_up: count("bytes_up"),
        bytes_down: count("bytes_down"),
        duration_ms: count("duration_ms"),
        raw: line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"time":"2026-01-01T00:00:00Z","event":"connection","src":"198.18.1.2:40000","orig_dst":"203.0.113.10:7","upstream":"203.0.113.10:7","cgroup_id":123,"pid":456,"decision":"allow","reason":"no-policy","bytes_up":5,"bytes_down":6,"duration_ms":7}"#;

    #[test]
    fn parses_the_documented_line() {
        let events = parse_connection_events(&format!("{LINE}\n\n{}\n", r#"{"event":"other"}"#));
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.src.to_string(), "198.18.1.2:40000");
        assert_eq!(e.orig_dst.unwrap().to_string(), "203.0.113.10:7");
        assert_eq!((e.cgroup_id, e.pid), (Some(123), Some(456)));
        assert_eq!((e.bytes_up, e.bytes_down, e.duration_ms), (5, 6, 7));
        assert_eq!(e.decision, "allow");
    }

    #[test]
    fn mapped_destinations_are_canonical() {
        let line = LINE.replace(
            r#""orig_dst":"203.0.113.10:7""#,
            r#""orig_dst":"[::ffff:203.0.113.10]:7""#,
        );
        assert_eq!(
            parse_connection_events(&line)[0]
                .orig_dst
                .unwrap()
                .to_string(),
            "203.0.113.10:7"
        );
    }

    #[test]
    fn a_deny_without_destination_parses() {
        let line = LINE
            .replace(
                r#""orig_dst":"203.0.113.10:7","upstream":"203.0.113.10:7""#,
                r#""orig_dst":null,"upstream":null"#,
            )
            .replace("allow", "deny");
        let e = &parse_connection_events(&line)[0];
        assert_eq!((e.orig_dst, e.upstream), (None, None));
    }

    #[test]
    #[should_panic(expected = "not JSON")]
    fn free_text_on_stdout_is_a_failure() {
        parse_connection_events("listening on 198.18.0.1:15001\n");
    }
}
