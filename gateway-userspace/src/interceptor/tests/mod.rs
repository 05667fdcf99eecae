//! Unit tests of the interceptor's pure parts.

mod probe;
