//! Unit tests of the interceptor's pure parts.

mod cgroups;
mod orig_dst;
mod probe;
