//! Unit tests of the proxy, one file per source file; none opens a socket.
//! The whole outbound path is tested through the real binary in the
//! privileged integration tests (`tests/tests/`).

mod mesh_identity;
mod origination;
mod revocation;
mod workload_limit;
