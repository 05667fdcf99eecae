use super::{check_pair, codes_of};

#[test]
fn origination_without_a_ca_is_reported_at_rule_and_port_level() {
    check_pair("GW2012");
    let (_, listing) = codes_of("gw2012-positive.yaml");
    assert!(listing.contains("IST0128") && listing.contains("IST0129"), "{listing}");
}
