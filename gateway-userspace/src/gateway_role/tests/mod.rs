//! Unit tests of the gateway role, one file per source file.

mod bound_routes;
