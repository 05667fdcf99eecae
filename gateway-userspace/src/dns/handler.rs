//! One query, from the bytes a workload sent to the bytes it gets back:
//! parse, ask the registry, decide, answer locally or forward, remember the
//! addresses given, count the outcome.

use std::{net::IpAddr, sync::Arc, time::Duration};

use hickory_proto::op::{Message, ResponseCode};

use super::{
    DnsMemory, DnsStats, LOCAL_ANSWER_TTL, NameRegistry, UnknownNames,
    answer::{Decision, addresses_for, decide, local_records},
    request::{Incoming, Request, encode, parse},
    stats::Outcome,
    upstream::Upstreams,
};

/// The largest reply over TCP: what its two-byte length can say.
pub const TCP_REPLY_LIMIT: usize = u16::MAX as usize;

/// The transport a query came over, which bounds the reply's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Everything a query needs, shared by all listeners.
pub(crate) struct Handler {
    pub(crate) unknown: UnknownNames,
    pub(crate) registry: Arc<dyn NameRegistry>,
    pub(crate) memory: Arc<DnsMemory>,
    pub(crate) stats: Arc<DnsStats>,
    pub(crate) upstreams: Upstreams,
}

impl Handler {
    /// The reply to send `client` for the message `bytes`, or `None` to send nothing.
    pub(crate) async fn handle(&self, client: IpAddr, bytes: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let request = match parse(bytes) {
            Incoming::Query(request) => request,
            Incoming::Reject { reply, code } => {
                tracing::debug!(%client, %code, "rejected a DNS query");
                self.stats.count(if code == ResponseCode::Refused { Outcome::Refused } else { Outcome::FormErr });
                return encode(&reply, limit(transport, 512));
            }
            Incoming::Drop => {
                tracing::debug!(%client, len = bytes.len(), "dropped a malformed DNS message");
                self.stats.count(Outcome::FormErr);
                return None;
            }
        };
        let (reply, outcome) = self.answer(client, &request).await;
        self.stats.count(outcome);
        tracing::debug!(
            %client,
            name = %request.name,
            qtype = %request.query.query_type,
            ?outcome,
            code = %reply.metadata.response_code,
            answers = reply.answers.len(),
            "DNS query answered"
        );
        encode(&reply, limit(transport, request.udp_limit))
    }

    async fn answer(&self, client: IpAddr, request: &Request) -> (Message, Outcome) {
        let known = self.registry.lookup(client, &request.name);
        match decide(request.query.query_type, &request.name, &known, &self.unknown) {
            Decision::Local(addresses) => {
                let mut reply = request.reply(ResponseCode::NoError);
                reply.metadata.authoritative = true;
                reply.answers = local_records(&request.query.name, &addresses);
                self.memory.record(client, &request.name, &addresses, LOCAL_ANSWER_TTL);
                (reply, Outcome::AnsweredRegistered)
            }
            Decision::NxDomain => {
                self.registry.refused(client, &request.name, &request.query.query_type.to_string());
                (request.reply(ResponseCode::NXDomain), Outcome::Refused)
            }
            Decision::Forward => match self.upstreams.ask(&request.query).await {
                Ok(answer) => {
                    let reply = forwarded(request, answer);
                    self.remember(client, request, &reply);
                    (reply, Outcome::Forwarded)
                }
                Err(error) => {
                    tracing::debug!(%client, name = %request.name, %error, "no upstream DNS answer");
                    (request.reply(ResponseCode::ServFail), Outcome::ServFail)
                }
            },
        }
    }

    /// Remembers the addresses a forwarded answer gives for the question's name.
    fn remember(&self, client: IpAddr, request: &Request, reply: &Message) {
        if reply.metadata.response_code != ResponseCode::NoError {
            return;
        }
        for (ip, ttl) in addresses_for(&request.query.name, &reply.answers) {
            self.memory.record(client, &request.name, &[ip], Duration::from_secs(u64::from(ttl)));
        }
    }
}

/// The upstream's answer, as a reply to the client's request: the client's
/// ID, flags and question, the upstream's code and records.
pub fn forwarded(request: &Request, answer: Message) -> Message {
    let mut reply = request.reply(answer.metadata.response_code);
    reply.answers = answer.answers;
    reply.authorities = answer.authorities;
    reply.additionals = answer.additionals;
    reply
}

/// The largest reply `transport` carries for a client that takes
/// `udp_limit` bytes over UDP.
pub fn limit(transport: Transport, udp_limit: u16) -> usize {
    match transport {
        Transport::Udp => usize::from(udp_limit),
        Transport::Tcp => TCP_REPLY_LIMIT,
    }
}
