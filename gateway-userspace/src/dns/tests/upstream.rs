//! What an upstream answer must look like to be taken.

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query},
    rr::{Name, Record, RecordType},
};

use crate::dns::{DnsError, upstream::Expected};

fn answer(op_code: OpCode, query: &Query) -> Vec<u8> {
    let mut message = Message::new(7, MessageType::Response, op_code);
    message.add_query(query.clone());
    message.add_additional(Record::update0(Name::root(), 0, RecordType::ZERO));
    message.to_vec().unwrap_or_else(|e| panic!("encoding the answer: {e}"))
}

#[test]
fn an_answer_with_another_opcode_is_refused() {
    let query = Query::query(Name::from_ascii("api.example.test.").expect("a name"), RecordType::A);
    let expect = Expected { id: 7, query: &query, server: ([192, 0, 2, 53], 53).into() };
    // An UPDATE's empty records, passed on in a reply to a query, made
    // that reply undecodable for the client.
    match expect.check(&answer(OpCode::Update, &query)) {
        Err(DnsError::UpstreamMalformed { reason, .. }) => assert!(reason.contains("opcode"), "{reason}"),
        other => panic!("an UPDATE answer was taken: {other:?}"),
    }
    let mut plain = Message::new(7, MessageType::Response, OpCode::Query);
    plain.add_query(query.clone());
    let bytes = plain.to_vec().unwrap_or_else(|e| panic!("encoding the answer: {e}"));
    assert!(expect.check(&bytes).is_ok(), "a plain answer was refused");
}
