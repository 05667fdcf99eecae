//! The store: versions, snapshots at a version, history and compaction, update rules.

use super::*;
use crate::kube_api::resources::by_plural;

fn pod(name: &str, node: &str) -> Value {
    json!({ "metadata": { "name": name, "namespace": "ns" }, "spec": { "nodeName": node }, "status": { "phase": "Pending" } })
}

fn names(objects: &[Value]) -> Vec<&str> {
    objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect()
}

#[test]
fn versions_rise_and_snapshots_roll_back() {
    let pods = by_plural("", "pods").unwrap();
    let mut s = Store::new();
    let a = s.create(pods, pod("a", "n1")).unwrap();
    let at_a = s.rv();
    assert_eq!(a["metadata"]["resourceVersion"], at_a.to_string());
    s.create(pods, pod("b", "n1")).unwrap();
    s.update(pods, pod("a", "n2"), Part::Main).unwrap();
    s.delete(pods, "ns", "b").unwrap();
    assert_eq!(names(&s.snapshot(pods, None).unwrap()), ["a"]);
    let past = s.snapshot(pods, Some(at_a)).unwrap();
    assert_eq!(
        (names(&past), past[0]["spec"]["nodeName"].as_str()),
        (vec!["a"], Some("n1"))
    );
    assert_eq!(
        names(&s.snapshot(pods, Some(at_a + 1)).unwrap()),
        ["a", "b"]
    );
    assert_eq!(s.snapshot(pods, Some(s.rv() + 1)).unwrap_err().code, 504);
    let changes = s.changes_after(pods, at_a).unwrap();
    assert_eq!(
        changes.iter().map(|c| c.new.is_some()).collect::<Vec<_>>(),
        [true, true, false]
    );
    s.compact();
    assert_eq!(s.changes_after(pods, at_a).unwrap_err().reason, "Expired");
    assert_eq!(s.snapshot(pods, Some(at_a)).unwrap_err().code, 410);
    assert!(s.changes_after(pods, s.rv()).unwrap().is_empty());
}

#[test]
fn updates_keep_identity_status_and_count_generations() {
    let pods = by_plural("", "pods").unwrap();
    let mut s = Store::new();
    let created = s.create(pods, pod("a", "n1")).unwrap();
    let rv = s.rv();
    let same = s.update(pods, pod("a", "n1"), Part::Main).unwrap();
    assert_eq!(
        (s.rv(), &same),
        (rv, &created),
        "a write that changes nothing keeps the version"
    );
    let mut running = pod("a", "n1");
    running["status"]["phase"] = json!("Running");
    let kept = s.update(pods, running.clone(), Part::Main).unwrap();
    assert_eq!(
        kept["status"]["phase"], "Pending",
        "a plain update keeps the status"
    );
    let status = s.update(pods, running, Part::Status).unwrap();
    assert_eq!(
        (
            status["status"]["phase"].as_str(),
            status["metadata"]["generation"].as_i64()
        ),
        (Some("Running"), Some(1))
    );
    let moved = s.update(pods, pod("a", "n2"), Part::Main).unwrap();
    assert_eq!(moved["metadata"]["generation"], 2);
    assert_eq!(moved["metadata"]["uid"], created["metadata"]["uid"]);
    let mut stale = pod("a", "n3");
    stale["metadata"]["resourceVersion"] = json!(rv.to_string());
    assert_eq!(s.update(pods, stale, Part::Main).unwrap_err().code, 409);
    assert_eq!(
        s.create(pods, pod("a", "n1")).unwrap_err().reason,
        "AlreadyExists"
    );
    assert_eq!(s.delete(pods, "ns", "zz").unwrap_err().code, 404);
}
