use super::{check_pair, codes_of};

#[test]
fn rules_after_a_catch_all_or_with_every_match_taken_are_unreachable() {
    check_pair("GW2015");
    let (_, listing) = codes_of("gw2015-positive.yaml");
    for field in ["spec.http[1]", "spec.tcp[1]", "spec.tls[1]"] {
        assert!(listing.contains(&format!(" {field}: (IST0130)")), "{field}:\n{listing}");
    }
}

#[test]
fn a_match_equal_to_an_earlier_one_is_ineffective() {
    check_pair("GW2016");
    let (_, listing) = codes_of("gw2016-positive.yaml");
    assert!(listing.contains("spec.http[0].match[1]") && listing.contains("spec.http[1].match[0]"), "{listing}");
}

#[test]
fn virtual_services_bound_to_mesh_for_one_host_are_each_reported() {
    check_pair("GW2017");
}
