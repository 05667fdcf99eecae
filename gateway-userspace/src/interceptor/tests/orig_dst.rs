//! Tests of `interceptor/orig_dst.rs`.

use crate::interceptor::orig_dst::*;
use gateway_common::OrigDst;
use std::net::{Ipv6Addr, SocketAddr};
use gateway_common::{AF_INET, v4_mapped};

#[test]
fn v4_and_mapped_v6_peers_give_the_same_key() {
    let local = "198.18.0.1:15001".parse().unwrap();
    let a = tuple_key("198.18.1.2:40000".parse().unwrap(), local);
    let b = tuple_key("[::ffff:198.18.1.2]:40000".parse().unwrap(), "[::ffff:198.18.0.1]:15001".parse().unwrap());
    assert_eq!(a, b);
    assert_eq!(a.src_addr, v4_mapped([198, 18, 1, 2]));
    assert_eq!((a.src_port, a.dst_port, a._pad), (40000, 15001, 0));
}

#[test]
fn records_turn_back_into_plain_v4_addresses() {
    let r = record(&OrigDst { addr: v4_mapped([203, 0, 113, 10]), port: 80, family: AF_INET, pid: 7, cgroup_id: 9 });
    assert_eq!(r.addr, "203.0.113.10:80".parse::<SocketAddr>().unwrap());
    let r6 = record(&OrigDst { addr: "2001:db8::10".parse::<Ipv6Addr>().unwrap().octets(), port: 443, family: 10, pid: 1, cgroup_id: 2 });
    assert_eq!(r6.addr, "[2001:db8::10]:443".parse::<SocketAddr>().unwrap());
}
