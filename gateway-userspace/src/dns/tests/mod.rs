//! Tests of the DNS module: the pure parts (`answer`, `memory`) open no
//! socket; `server` and `resolver` run against dnsmasq inside a private
//! network namespace per test (`netns`), and need root.

mod answer;
mod client;
mod memory;
mod netns;
mod resolver;
mod server;
