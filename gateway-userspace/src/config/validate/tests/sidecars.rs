use super::{check_pair, codes_of};

#[test]
fn two_sidecars_without_selector_in_one_namespace_are_both_reported() {
    check_pair("GW2008");
}

#[test]
fn sidecars_selecting_one_workload_are_both_reported() {
    check_pair("GW2009");
    let (_, listing) = codes_of("gw2009-positive.yaml");
    assert!(listing.contains("IST0110") && listing.contains("default/maps-to-same-workload"), "{listing}");
}
