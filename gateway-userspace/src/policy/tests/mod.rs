//! Unit tests of the egress policy, one file per source file (`steer.rs`:
//! the node's steering to an egress gateway, part of `decide.rs`). YAML in,
//! verdict out: none opens a socket.

mod audit;
mod decide;
mod declared;
mod recheck;
mod steer;
mod traffic_policy;
