//! Tests of `addrs.rs`.

use std::net::IpAddr;

use super::super::addrs::write_ip;

#[test]
fn an_address_is_written_as_display_writes_it() {
    for text in ["0.0.0.0", "10.0.0.1", "198.51.100.255", "255.255.255.255", "::1", "2001:db8::7", "::ffff:192.0.2.9", "fe80::1:2:3:4"] {
        let ip: IpAddr = text.parse().unwrap();
        let mut out = b"prior, ".to_vec();
        write_ip(&mut out, ip);
        assert_eq!(String::from_utf8(out).unwrap(), format!("prior, {ip}"), "{text}");
    }
}

#[test]
fn every_octet_value_is_written_in_every_position() {
    for o in 0..=255u8 {
        let ip = IpAddr::V4(std::net::Ipv4Addr::new(o, o.wrapping_add(7), o.wrapping_mul(3), 255 - o));
        let mut out = Vec::new();
        write_ip(&mut out, ip);
        assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
    }
}
