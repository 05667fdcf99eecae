//! Unit tests of the pure parts: what the API's objects become.

mod credential_secrets;
mod gateway_ports;
mod pod_cgroups;
mod pods;
mod services;
