//! Unit tests of the outbound path's pure parts, one file per source file.

mod workload_limit;
