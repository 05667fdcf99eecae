//! A query's bytes to a validated question, and the replies built around it.
//! Nothing here panics, whatever the bytes.

use hickory_proto::{
    op::{Edns, Message, MessageType, Metadata, OpCode, Query, ResponseCode},
    rr::DNSClass,
};

use super::memory::normalize;

/// Bytes of a DNS header; anything shorter cannot even be answered.
const HEADER_LEN: usize = 12;
/// The largest UDP reply we send, whatever the client's EDNS says.
const MAX_UDP_REPLY: u16 = 4096;
/// The UDP payload size we advertise in our EDNS replies.
pub(crate) const OUR_EDNS_PAYLOAD: u16 = 1232;

/// A query with exactly one question, in class IN.
#[derive(Clone, Debug)]
pub struct Request {
    pub metadata: Metadata,
    pub query: Query,
    /// The question's name, lowercase and without the final dot.
    pub name: String,
    /// Whether the client spoke EDNS, and so gets EDNS back.
    pub edns: bool,
    /// The largest UDP reply the client takes.
    pub udp_limit: u16,
}

/// What to do with the bytes of one incoming message.
#[derive(Debug)]
pub enum Incoming {
    /// A query to decide on.
    Query(Request),
    /// Malformed or unsupported: send this error reply.
    Reject { reply: Message, code: ResponseCode },
    /// Not worth a reply (too short, or itself a response).
    Drop,
}

/// Reads one message from a client.
pub fn parse(bytes: &[u8]) -> Incoming {
    let Some(header) = bytes.get(..HEADER_LEN) else { return Incoming::Drop };
    // Replying to a response would let two servers bounce messages forever.
    if header[2] & 0x80 != 0 {
        return Incoming::Drop;
    }
    let id = u16::from_be_bytes([header[0], header[1]]);
    let message = match Message::from_vec(bytes) {
        Ok(message) => message,
        Err(_) => return reject_raw(id, header, ResponseCode::FormErr),
    };
    if message.metadata.op_code != OpCode::Query {
        return reject(&message, ResponseCode::NotImp);
    }
    let [query] = message.queries.as_slice() else {
        return reject(&message, ResponseCode::FormErr);
    };
    if query.query_class != DNSClass::IN {
        return reject(&message, ResponseCode::Refused);
    }
    let udp_limit = message.edns.as_ref().map_or(512, Edns::max_payload).clamp(512, MAX_UDP_REPLY);
    Incoming::Query(Request {
        metadata: message.metadata,
        query: query.clone(),
        name: normalize(&query.name.to_ascii()),
        edns: message.edns.is_some(),
        udp_limit,
    })
}

impl Request {
    /// An empty reply to this request with `code`, echoing the question.
    pub fn reply(&self, code: ResponseCode) -> Message {
        let mut reply = empty_reply(&self.metadata, code);
        reply.add_query(self.query.clone());
        if self.edns {
            reply.set_edns(our_edns());
        }
        reply
    }
}

/// Encodes `reply` for a transport that takes at most `limit` bytes: past
/// it, the answer sections are dropped and TC is set, so the client retries
/// over TCP. `None` only if even that cannot be encoded.
pub fn encode(reply: &Message, limit: usize) -> Option<Vec<u8>> {
    match reply.to_vec() {
        Ok(bytes) if bytes.len() <= limit => Some(bytes),
        Ok(_) => reply.truncate().to_vec().ok().filter(|bytes| bytes.len() <= limit),
        Err(error) => {
            tracing::warn!(%error, "cannot encode a DNS reply");
            None
        }
    }
}

pub(crate) fn our_edns() -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(OUR_EDNS_PAYLOAD);
    edns
}

/// A reply with the request's ID, opcode, RD and CD, and no record.
fn empty_reply(request: &Metadata, code: ResponseCode) -> Message {
    let mut metadata = Metadata::response_from_request(request);
    metadata.recursion_available = true;
    metadata.response_code = code;
    let mut reply = Message::new(metadata.id, MessageType::Response, metadata.op_code);
    reply.metadata = metadata;
    reply
}

fn reject(message: &Message, code: ResponseCode) -> Incoming {
    let mut reply = empty_reply(&message.metadata, code);
    // Echo the question only when there is exactly one to echo.
    if let [query] = message.queries.as_slice() {
        reply.add_query(query.clone());
    }
    Incoming::Reject { reply, code }
}

/// A reply to a message that did not decode: only its header is trusted.
fn reject_raw(id: u16, header: &[u8], code: ResponseCode) -> Incoming {
    let op_code = OpCode::from_u8((header[2] >> 3) & 0x0f);
    let mut reply = Message::error_msg(id, op_code, code);
    reply.metadata.recursion_desired = header[2] & 0x01 != 0;
    reply.metadata.recursion_available = true;
    Incoming::Reject { reply, code }
}
