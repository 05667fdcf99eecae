use std::collections::BTreeSet;

use crate::suggest::wildcard::{fold, registrable_domain};

#[test]
fn the_registrable_domain_is_the_last_two_labels_or_three_under_a_country_second_level() {
    assert_eq!(registrable_domain("a.b.example.com").as_deref(), Some("example.com"));
    assert_eq!(registrable_domain("www.example.co.uk").as_deref(), Some("example.co.uk"));
    assert_eq!(registrable_domain("example.com"), None);
    assert_eq!(registrable_domain("example.co.uk"), None);
}

#[test]
fn subdomains_fold_only_from_the_minimum_on() {
    let hosts: BTreeSet<String> = ["a.example.test", "b.example.test", "c.example.test", "x.other.test"].map(String::from).into();
    assert!(fold(&hosts, 4).is_empty());
    assert!(fold(&hosts, 0).is_empty(), "never by default");
    let folded = fold(&hosts, 3);
    assert_eq!(folded.keys().collect::<Vec<_>>(), ["*.example.test"]);
    assert_eq!(folded["*.example.test"].len(), 3);
}
