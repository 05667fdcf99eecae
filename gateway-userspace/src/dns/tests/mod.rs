//! Unit tests of the DNS module, one file per source file; none opens a
//! socket or needs root. The server and the resolver against a real
//! upstream, inside a network namespace, are tested in the privileged
//! integration tests: `tests/tests/dns_server.rs` and `dns_resolver.rs`.

mod answer;
mod memory;
mod upstream;
