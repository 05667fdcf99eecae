//! Unit tests of the gateway role, one file per source file.

mod authorize;
mod balance;
mod bound_routes;
mod clusters;
mod cors;
mod edge_headers;
mod mirror;
mod route_policy;
mod servers;
mod tcp;
