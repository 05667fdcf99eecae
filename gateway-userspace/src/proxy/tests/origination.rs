//! TLS origination: which level of a DestinationRule decides, and the cache kept per generation.

use crate::proxy::origination::*;
use crate::test_support::active_config;

const RULE: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: secure, namespace: default}
spec:
  host: secure.test
  trafficPolicy:
    tls: {mode: DISABLE}
  subsets:
  - name: originate
    trafficPolicy:
      tls: {mode: SIMPLE, sni: origin.secure.test, insecureSkipVerify: true}
";

#[test]
fn a_subset_tls_originates_where_the_rule_says_disable() {
    let originations = Originations::default();
    let active = active_config(RULE, 1);
    let ask = |subset| originations.for_destination(&active, "default", "secure.test", subset, 80).expect("settings load");
    assert!(ask(None).is_none(), "the rule's own level: DISABLE");
    let (_, name) = ask(Some("originate")).expect("the subset originates");
    assert_eq!(name, "origin.secure.test");
}

#[test]
fn a_newer_generation_drops_the_configs_of_older_ones() {
    let originations = Originations::default();
    for generation in 1..=3 {
        let active = active_config(RULE, generation);
        let _ = originations.for_destination(&active, "default", "secure.test", Some("originate"), 80);
    }
    let cache = originations.built.lock().expect("originations lock");
    let generations: Vec<u64> = cache.values().flatten().map(|b| b.generation).collect();
    assert!(generations.iter().all(|g| *g == 3), "{generations:?}");
}
