use super::{check_pair, codes_of};

#[test]
fn a_tcp_port_without_addresses_is_reported() {
    check_pair("GW2010");
}

#[test]
fn conflicting_protocols_are_reported_on_each_entry() {
    check_pair("GW2011");
    let (_, listing) = codes_of("gw2011-positive.yaml");
    assert!(listing.contains("IST0177") && listing.contains("(HTTP, TLS)"), "{listing}");
}
