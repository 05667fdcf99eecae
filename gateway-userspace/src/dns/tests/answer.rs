//! The decision, the records, and the parsing of queries: no socket.

use std::net::IpAddr;

use hickory_proto::{
    op::{Edns, Message, OpCode, Query, ResponseCode},
    rr::{DNSClass, Name, RData, Record, RecordType, rdata::CNAME},
};

use crate::dns::{
    NameAnswer, UnknownNames,
    answer::{Decision, addresses_for, decide, local_records},
    request::{Incoming, encode, parse},
};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or_else(|_| panic!("bad ip {text}"))
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap_or_else(|error| panic!("bad name {text}: {error}"))
}

fn registered(addresses: &[&str], resolve: bool) -> NameAnswer {
    NameAnswer::Registered { addresses: addresses.iter().map(|a| ip(a)).collect(), resolve }
}

fn refuse() -> UnknownNames {
    UnknownNames::Refuse { forward_domains: vec!["cluster.local".into()] }
}

#[test]
fn only_the_cluster_domains_are_forwarded_when_unknown_names_are_refused() {
    let unknown = refuse();
    for forwarded in ["cluster.local", "kubernetes.default.svc.cluster.local", "svc.cluster.local"] {
        assert_eq!(decide(RecordType::A, forwarded, &NameAnswer::Unregistered, &unknown), Decision::Forward, "{forwarded}");
    }
    for refused in ["evilcluster.local", "cluster.local.evil.com", "aGVsbG8.tunnel.example.com", "local"] {
        assert_eq!(decide(RecordType::A, refused, &NameAnswer::Unregistered, &unknown), Decision::NxDomain, "{refused}");
    }
}

#[test]
fn unregistered_names_follow_the_policy() {
    assert_eq!(decide(RecordType::A, "x.example.com", &NameAnswer::Unregistered, &UnknownNames::Forward), Decision::Forward);
    assert_eq!(decide(RecordType::TXT, "x.example.com", &NameAnswer::Unregistered, &UnknownNames::Forward), Decision::Forward);
    assert_eq!(decide(RecordType::A, "x.example.com", &NameAnswer::Unregistered, &refuse()), Decision::NxDomain);
    assert_eq!(decide(RecordType::AAAA, "x.example.com", &NameAnswer::Unregistered, &refuse()), Decision::NxDomain);
}

#[test]
fn registered_addresses_answer_a_and_aaaa_by_family() {
    let known = registered(&["192.0.2.1", "2001:db8::1", "192.0.2.2"], true);
    for unknown in [UnknownNames::Forward, refuse()] {
        assert_eq!(decide(RecordType::A, "x.example.com", &known, &unknown), Decision::Local(vec![ip("192.0.2.1"), ip("192.0.2.2")]));
        assert_eq!(decide(RecordType::AAAA, "x.example.com", &known, &unknown), Decision::Local(vec![ip("2001:db8::1")]));
    }
    let v4_only = registered(&["192.0.2.1"], true);
    assert_eq!(decide(RecordType::AAAA, "x.example.com", &v4_only, &UnknownNames::Forward), Decision::Local(vec![]));
}

#[test]
fn registered_other_types_forward_only_if_resolvable() {
    for qtype in [RecordType::TXT, RecordType::HTTPS, RecordType::SRV, RecordType::MX, RecordType::ANY] {
        assert_eq!(decide(qtype, "x.example.com", &registered(&["192.0.2.1"], true), &refuse()), Decision::Forward);
        assert_eq!(decide(qtype, "x.example.com", &registered(&["192.0.2.1"], false), &UnknownNames::Forward), Decision::Local(vec![]));
    }
}

#[test]
fn registered_without_addresses_resolves_or_has_no_data() {
    for qtype in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
        assert_eq!(decide(qtype, "x.example.com", &registered(&[], true), &refuse()), Decision::Forward);
        assert_eq!(decide(qtype, "x.example.com", &registered(&[], false), &UnknownNames::Forward), Decision::Local(vec![]));
    }
}

#[test]
fn local_records_carry_the_name_and_ttl() {
    let records = local_records(&name("api.example.com."), &[ip("192.0.2.1"), ip("2001:db8::1")]);
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.name == name("api.example.com.") && r.ttl == 30));
    assert_eq!(records[0].record_type(), RecordType::A);
    assert_eq!(records[1].record_type(), RecordType::AAAA);
}

fn cname(owner: &str, target: &str, ttl: u32) -> Record {
    Record::from_rdata(name(owner), ttl, RData::CNAME(CNAME(name(target))))
}

fn a(owner: &str, address: &str, ttl: u32) -> Record {
    let mut record = local_records(&name(owner), &[ip(address)]).remove(0);
    record.ttl = ttl;
    record
}

#[test]
fn addresses_follow_the_cname_chain_and_ignore_strangers() {
    let answers = vec![
        a("cdn.example.net.", "192.0.2.9", 300),
        cname("www.example.com.", "edge.example.com.", 60),
        cname("edge.example.com.", "cdn.example.net.", 600),
        a("unrelated.example.org.", "192.0.2.66", 300),
        a("www.example.com.", "192.0.2.10", 20),
    ];
    let found = addresses_for(&name("WWW.Example.com."), &answers);
    assert_eq!(found, vec![(ip("192.0.2.9"), 60), (ip("192.0.2.10"), 20)]);
}

#[test]
fn cname_loops_end() {
    let answers = vec![cname("a.test.", "b.test.", 10), cname("b.test.", "a.test.", 10), a("b.test.", "192.0.2.1", 5)];
    assert_eq!(addresses_for(&name("a.test."), &answers), vec![(ip("192.0.2.1"), 5)]);
}

fn query_bytes(qname: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name(qname), qtype));
    if let Some(payload) = edns {
        let mut options = Edns::new();
        options.set_max_payload(payload);
        message.set_edns(options);
    }
    message.to_vec().unwrap_or_else(|error| panic!("encode: {error}"))
}

#[test]
fn parses_a_query_and_normalizes_the_name() {
    let Incoming::Query(request) = parse(&query_bytes("API.Example.COM.", RecordType::AAAA, Some(4000))) else {
        panic!("a valid query was not accepted");
    };
    assert_eq!(request.name, "api.example.com");
    assert_eq!(request.query.query_type, RecordType::AAAA);
    assert!(request.edns);
    assert_eq!(request.udp_limit, 4000);
    let Incoming::Query(plain) = parse(&query_bytes("x.test.", RecordType::A, None)) else { panic!("not accepted") };
    assert_eq!(plain.udp_limit, 512);
    assert!(!plain.edns);
}

#[test]
fn short_messages_and_responses_are_dropped() {
    assert!(matches!(parse(&[]), Incoming::Drop));
    assert!(matches!(parse(&[0x12, 0x34, 0x01]), Incoming::Drop));
    let mut response = query_bytes("x.test.", RecordType::A, None);
    response[2] |= 0x80;
    assert!(matches!(parse(&response), Incoming::Drop));
}

#[test]
fn garbage_after_a_header_gets_formerr_with_the_id() {
    let mut bytes = vec![0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];
    bytes.extend_from_slice(&[0x3f, b'x', b'y']);
    let Incoming::Reject { reply, code } = parse(&bytes) else { panic!("garbage was not rejected") };
    assert_eq!(code, ResponseCode::FormErr);
    assert_eq!(reply.metadata.id, 0xabcd);
    assert!(reply.metadata.recursion_desired);
    assert!(encode(&reply, 512).is_some_and(|bytes| bytes.len() == 12));
}

#[test]
fn unsupported_queries_are_rejected() {
    let mut two = Message::query();
    two.add_query(Query::query(name("a.test."), RecordType::A));
    two.add_query(Query::query(name("b.test."), RecordType::A));
    let bytes = two.to_vec().unwrap_or_else(|error| panic!("encode: {error}"));
    assert!(matches!(parse(&bytes), Incoming::Reject { code: ResponseCode::FormErr, .. }));

    let mut notify = Message::new(7, hickory_proto::op::MessageType::Query, OpCode::Notify);
    notify.add_query(Query::query(name("a.test."), RecordType::SOA));
    let bytes = notify.to_vec().unwrap_or_else(|error| panic!("encode: {error}"));
    assert!(matches!(parse(&bytes), Incoming::Reject { code: ResponseCode::NotImp, .. }));

    let mut chaos = Query::query(name("version.bind."), RecordType::TXT);
    chaos.set_query_class(DNSClass::CH);
    let mut message = Message::query();
    message.add_query(chaos);
    let bytes = message.to_vec().unwrap_or_else(|error| panic!("encode: {error}"));
    assert!(matches!(parse(&bytes), Incoming::Reject { code: ResponseCode::Refused, .. }));
}

#[test]
fn oversized_replies_are_truncated() {
    let Incoming::Query(request) = parse(&query_bytes("big.test.", RecordType::A, None)) else { panic!("rejected") };
    let mut reply = request.reply(ResponseCode::NoError);
    let many: Vec<IpAddr> = (0..=255u8).map(|i| IpAddr::from([198, 18, 1, i])).collect();
    reply.answers = local_records(&request.query.name, &many);
    let small = encode(&reply, 512).unwrap_or_else(|| panic!("no truncated reply"));
    let decoded = Message::from_vec(&small).unwrap_or_else(|error| panic!("decode: {error}"));
    assert!(decoded.metadata.truncation);
    assert!(decoded.answers.is_empty());
    assert_eq!(decoded.queries.len(), 1);
    let full = encode(&reply, usize::from(u16::MAX)).unwrap_or_else(|| panic!("no full reply"));
    assert_eq!(Message::from_vec(&full).map(|m| m.answers.len()).ok(), Some(256));
}

/// Mutations of a valid query (a small fixed-seed generator, so a failure
/// repeats) never make the parser panic.
#[test]
fn mutated_queries_never_panic() {
    let base = query_bytes("www.example.com.", RecordType::A, Some(1232));
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut bytes = base.clone();
        let len = (next() % (bytes.len() as u64 + 8)) as usize;
        bytes.resize(len, 0);
        for _ in 0..(next() % 6) {
            if !bytes.is_empty() {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
        }
        if let Incoming::Reject { reply, .. } = parse(&bytes) {
            let _ = encode(&reply, 512);
        }
    }
}
