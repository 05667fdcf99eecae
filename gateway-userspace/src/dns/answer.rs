//! The pure decision of what to answer for one question, and the records
//! that go with it. No I/O: the handler carries the decision out.

use std::net::IpAddr;

use hickory_proto::rr::{
    Name, RData, Record, RecordType,
    rdata::{A, AAAA},
};

use super::{LOCAL_ANSWER_TTL, NameAnswer, UnknownNames};

/// What to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer NOERROR with these registered addresses, already filtered by
    /// the question's type; none means NODATA.
    Local(Vec<IpAddr>),
    /// Ask the upstream resolvers and pass their answer on.
    Forward,
    /// Answer NXDOMAIN: the name is not registered and unknown names are refused.
    NxDomain,
}

/// Decides the answer to a question of type `qtype` about a name the
/// registry described as `known`.
///
/// A registered name with addresses answers A and AAAA from them alone (a
/// family it has no address of gets NODATA); its other types are forwarded
/// if it may be resolved, else NODATA. A registered name without addresses
/// is forwarded if it may be resolved, else NODATA.
pub fn decide(qtype: RecordType, name: &str, known: &NameAnswer, unknown: &UnknownNames) -> Decision {
    match known {
        NameAnswer::Unregistered if unknown.forwards(name) => Decision::Forward,
        NameAnswer::Unregistered => Decision::NxDomain,
        NameAnswer::Registered { addresses, resolve } => {
            let of_family = |v4: bool| addresses.iter().copied().filter(|ip| ip.is_ipv4() == v4).collect();
            match qtype {
                RecordType::A if !addresses.is_empty() => Decision::Local(of_family(true)),
                RecordType::AAAA if !addresses.is_empty() => Decision::Local(of_family(false)),
                _ if *resolve => Decision::Forward,
                _ => Decision::Local(Vec::new()),
            }
        }
    }
}

/// The answer records for `addresses` under `name`, with the local TTL.
pub fn local_records(name: &Name, addresses: &[IpAddr]) -> Vec<Record> {
    let ttl = u32::try_from(LOCAL_ANSWER_TTL.as_secs()).unwrap_or(u32::MAX);
    addresses
        .iter()
        .map(|ip| {
            let data = match ip {
                IpAddr::V4(v4) => RData::A(A(*v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
            };
            Record::from_rdata(name.clone(), ttl, data)
        })
        .collect()
}

/// The addresses an answer section gives for `name`, with their TTLs:
/// A and AAAA records owned by `name` or by a name its CNAME chain leads
/// to. Records about unrelated names are ignored. A chain's address lives
/// no longer than the CNAMEs leading to it.
pub fn addresses_for(name: &Name, answers: &[Record]) -> Vec<(IpAddr, u32)> {
    // (name in the chain, the smallest TTL of the CNAMEs leading to it)
    let mut chain: Vec<(&Name, u32)> = vec![(name, u32::MAX)];
    // A chain is at most as long as the section; each pass adds one link.
    for _ in 0..answers.len() {
        let mut grew = false;
        for record in answers {
            let RData::CNAME(target) = &record.data else { continue };
            let Some(ttl) = chain.iter().find(|(owner, _)| *owner == &record.name).map(|(_, ttl)| *ttl) else {
                continue;
            };
            if !chain.iter().any(|(known, _)| *known == &target.0) {
                chain.push((&target.0, ttl.min(record.ttl)));
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    answers
        .iter()
        .filter_map(|record| {
            let ip = match &record.data {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
                _ => return None,
            };
            let (_, chain_ttl) = chain.iter().find(|(owner, _)| *owner == &record.name)?;
            Some((ip, record.ttl.min(*chain_ttl)))
        })
        .collect()
}
