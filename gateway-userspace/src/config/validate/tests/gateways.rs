use super::{check_pair, codes_of};

#[test]
fn gateways_with_overlapping_selectors_on_one_port_and_host_are_both_errors() {
    check_pair("GW2004");
    let (_, listing) = codes_of("gw2004-positive.yaml");
    assert!(listing.contains("Gateway default/alpha") && listing.contains("Gateway default/beta"), "{listing}");
}

#[test]
fn gateways_with_equal_selectors_on_one_port_and_host_are_merged_with_a_warning() {
    check_pair("GW2013");
    let (_, listing) = codes_of("gw2013-positive.yaml");
    assert!(listing.contains("warning[GW2013]") && listing.contains("IST0145"), "{listing}");
}

#[test]
fn a_certificate_shared_by_gateways_of_one_instance_is_reported_on_each() {
    check_pair("GW2014");
}
