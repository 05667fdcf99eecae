//! The verdict on probe outcomes: what stops the agent, what only turns the
//! kernel relay off, and how the error reads.

use crate::interceptor::probe::*;

fn all_available() -> Vec<(Feature, Outcome)> {
    FEATURES.iter().map(|f| (*f, Outcome::Available)).collect()
}

fn with(key: &str, outcome: Outcome) -> Vec<(Feature, Outcome)> {
    let mut outcomes = all_available();
    let slot = outcomes.iter_mut().find(|(f, _)| f.key == key).unwrap_or_else(|| panic!("no feature {key}"));
    slot.1 = outcome;
    outcomes
}

#[test]
fn everything_present_passes_with_the_relay() {
    let verdict = Verdict::judge(&all_available());
    assert_eq!(verdict.error("6.1.0"), None);
    assert!(verdict.relay_available());
    assert_eq!(verdict.relay_note(), None);
}

#[test]
fn the_minimum_kernel_is_the_getpeername_hooks_release() {
    assert_eq!(minimum_kernel(), (5, 8));
}

#[test]
fn a_missing_required_feature_names_it_and_the_minimum_kernel() {
    let verdict = Verdict::judge(&with("attach-getpeername", Outcome::Missing));
    let err = verdict.error("5.4.0-150-generic").expect("refused");
    assert_eq!(
        err.to_string(),
        "kernel 5.4.0-150-generic lacks what the kernel programs need: \
         cgroup/getpeername4|6 hooks (gw_getpeername4|6) (Linux 5.8); the minimum kernel is Linux 5.8"
    );
    assert!(verdict.relay_available(), "the relay's own features are all there");
}

#[test]
fn every_missing_required_feature_is_listed_in_probe_order() {
    let mut outcomes = with("cgroup-link", Outcome::Missing);
    outcomes.iter_mut().find(|(f, _)| f.key == "map-sk-storage").expect("feature").1 = Outcome::Missing;
    let err = Verdict::judge(&outcomes).error("5.1").expect("refused").to_string();
    let storage = err.find("socket storage maps").expect("storage named");
    let link = err.find("bpf_link for cgroup programs").expect("link named");
    assert!(storage < link, "{err}");
}

#[test]
fn a_probe_that_could_not_tell_refuses_and_says_why() {
    let verdict = Verdict::judge(&with("map-sk-storage", Outcome::Unknown("Operation not permitted".into())));
    let err = verdict.error("6.18.0").expect("an unconfirmed feature is not assumed present").to_string();
    assert!(err.contains("probe failed: Operation not permitted"), "{err}");
}

#[test]
fn a_missing_relay_feature_only_turns_the_relay_off() {
    let verdict = Verdict::judge(&with("map-sockhash", Outcome::Missing));
    assert_eq!(verdict.error("6.1.0"), None);
    assert!(!verdict.relay_available());
    let note = verdict.relay_note().expect("said in the log");
    assert!(note.contains("decided streams are copied"), "{note}");
    assert!(note.contains("SOCKHASH maps (BPF_MAP_TYPE_SOCKHASH) (Linux 4.18)"), "{note}");
}

#[test]
fn an_unknown_relay_probe_turns_the_relay_off_too() {
    let verdict = Verdict::judge(&with("prog-sk-skb", Outcome::Unknown("E2BIG".into())));
    assert!(!verdict.relay_available());
    assert_eq!(verdict.error("6.1.0"), None);
}

#[test]
fn every_feature_key_is_unique() {
    let mut keys: Vec<_> = FEATURES.iter().map(|f| f.key).collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    assert_eq!(before, keys.len());
}

#[test]
fn pretending_takes_only_known_keys() {
    assert_eq!(pretend_missing(None), Vec::<&str>::new());
    assert_eq!(pretend_missing(Some("")), Vec::<&str>::new());
    assert_eq!(pretend_missing(Some(" map-sockhash , bogus,cgroup-link")), vec!["cgroup-link", "map-sockhash"]);
}
