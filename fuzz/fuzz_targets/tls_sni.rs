//! The TLS ClientHello sniffer against rustls' `Acceptor`: the SNI the
//! gateway routes on is the one a real TLS server reads, however the hello
//! is cut into records and TCP segments.
//!
//! Input: if it starts with a handshake record (0x16), it is the wire bytes
//! as sent. Otherwise its first byte picks a record size and the rest is a
//! handshake message, wrapped into records of that size (the fragmentation
//! RFC 8446 §5.1 allows). Bytes 1–4 of the wire also choose TCP segment
//! boundaries at which the sniffer is asked early.

#![no_main]

use gateway_fuzz::{check_prefixes, wire_of};
use gateway_userspace::sniff::{SniffOutcome, Sniffed, sniff};
use libfuzzer_sys::fuzz_target;
use rustls::server::Acceptor;

/// What rustls made of the bytes.
#[derive(Debug)]
enum Rustls {
    /// A complete ClientHello with this SNI (as rustls reports it).
    Hello(Option<String>),
    Incomplete,
    Rejected,
}

fn rustls_view(wire: &[u8]) -> Rustls {
    let mut acceptor = Acceptor::default();
    let mut rest = wire;
    while !rest.is_empty() {
        if acceptor.read_tls(&mut rest).is_err() {
            return Rustls::Rejected;
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                return Rustls::Hello(accepted.client_hello().server_name().map(str::to_owned));
            }
            Ok(None) => {}
            Err(_) => return Rustls::Rejected,
        }
    }
    Rustls::Incomplete
}

fuzz_target!(|data: &[u8]| {
    let wire = wire_of(data);
    let ours = sniff(&wire);
    check_prefixes(&wire, &ours);
    match (rustls_view(&wire), &ours) {
        // Both read a hello: the names agree. rustls keeps the client's
        // case and final dot, the sniffer normalises both away.
        (Rustls::Hello(theirs), SniffOutcome::Done(Sniffed::Tls(hello))) => {
            let theirs = theirs.map(|n| n.trim_end_matches('.').to_ascii_lowercase());
            assert_eq!(hello.sni, theirs, "SNI differs from rustls");
        }
        // Refusing a hello rustls takes is safe (the connection fails
        // closed); only an IP-address SNI, which rustls drops silently,
        // and our size limit lead there.
        (Rustls::Hello(_), SniffOutcome::Malformed(_)) => {}
        (Rustls::Hello(theirs), other) => {
            panic!("rustls read a hello with SNI {theirs:?}; the sniffer said {other:?}")
        }
        // A hello the sniffer accepts, rustls must not still be waiting for.
        (Rustls::Incomplete, SniffOutcome::Done(Sniffed::Tls(hello))) => {
            panic!("the sniffer read {hello:?} from bytes rustls finds incomplete")
        }
        _ => {}
    }
});
