//! DNS: a client's message through the handler's pure steps, as
//! `dns/handler.rs` chains them (parse → decide → reply → encode), for
//! every kind of registry answer and both transports.
//!
//! Input: a 2-byte length, the client's message, then an upstream answer
//! used on the forwarding path once `upstream::Expected::check` accepts it. No panic; every reply fits its transport
//! (512 bytes for an error over UDP, the client's EDNS size, 65535 over
//! TCP), decodes again, and answers the client's ID.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gateway_userspace::dns::{
    NameAnswer, UnknownNames,
    answer::{Decision, addresses_for, decide, local_records},
    handler::{Transport, forwarded, limit},
    request::{Incoming, Request, encode, parse},
    upstream::Expected,
};
use hickory_proto::op::{Message, ResponseCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else { return };
    let split = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (query, upstream) = rest.split_at(split);
    let id = query.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));

    match parse(query) {
        Incoming::Drop => {}
        Incoming::Reject { reply, .. } => check_sent(&reply, limit(Transport::Udp, 512), id),
        Incoming::Query(request) => {
            assert!((512..=4096).contains(&request.udp_limit), "udp limit {}", request.udp_limit);
            assert_eq!(request.name, request.name.to_ascii_lowercase(), "name not lowercased");
            // The forwarding path gets what the upstream check lets through:
            // a response with the ID we chose (here, the one it carries)
            // about the client's question.
            let upstream_id = upstream.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
            let expect = Expected { id: upstream_id, query: &request.query, server: ([192, 0, 2, 53], 53).into() };
            let answer = expect.check(upstream).ok();
            for known in registry_answers(upstream) {
                for unknown in [UnknownNames::Forward, UnknownNames::Refuse { forward_domains: vec!["cluster.local".into()] }] {
                    let decision = decide(request.query.query_type, &request.name, &known, &unknown);
                    if let Some(reply) = reply_for(&request, decision, answer.as_ref()) {
                        for transport in [Transport::Udp, Transport::Tcp] {
                            check_sent(&reply, limit(transport, request.udp_limit), id);
                        }
                    }
                }
            }
        }
    }
});

/// The reply the handler builds for `decision`; `None` on the forwarding
/// path when the upstream bytes are no acceptable answer (the handler then answers
/// SERVFAIL, which the other decisions already cover).
fn reply_for(request: &Request, decision: Decision, upstream: Option<&Message>) -> Option<Message> {
    Some(match decision {
        Decision::Local(addresses) => {
            let mut reply = request.reply(ResponseCode::NoError);
            reply.metadata.authoritative = true;
            reply.answers = local_records(&request.query.name, &addresses);
            reply
        }
        Decision::NxDomain => request.reply(ResponseCode::NXDomain),
        Decision::Forward => {
            let reply = forwarded(request, upstream?.clone());
            for (ip, _) in addresses_for(&request.query.name, &reply.answers) {
                let given = reply.answers.iter().any(|r| r.data.ip_addr() == Some(ip));
                assert!(given, "{ip} remembered but not in the answer");
            }
            reply
        }
    })
}

/// Registered (with a few or many addresses, resolvable or not) and not.
fn registry_answers(seed: &[u8]) -> Vec<NameAnswer> {
    let many: Vec<IpAddr> = (0..200u8)
        .map(|i| match seed.get(usize::from(i)).copied().unwrap_or(i) % 2 {
            0 => IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)),
            _ => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i))),
        })
        .collect();
    let few = many.iter().copied().take(3).collect();
    vec![
        NameAnswer::Unregistered,
        NameAnswer::Registered { addresses: Vec::new(), resolve: true },
        NameAnswer::Registered { addresses: few, resolve: false },
        NameAnswer::Registered { addresses: many, resolve: true },
    ]
}

/// What goes on the wire fits `limit`, decodes, and carries the client's ID.
fn check_sent(reply: &Message, limit: usize, id: Option<u16>) {
    let Some(bytes) = encode(reply, limit) else { return };
    assert!(bytes.len() <= limit, "{}-byte reply over a {limit}-byte limit", bytes.len());
    let back = Message::from_vec(&bytes).unwrap_or_else(|e| panic!("our reply does not decode ({e}): {reply:?}"));
    assert_eq!(Some(back.metadata.id), id, "reply ID");
}
