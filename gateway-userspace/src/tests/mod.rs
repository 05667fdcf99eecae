//! Unit tests of the crate's top-level files, one file per source file.

mod access_log;
mod access_log_reason;
mod access_log_time;
mod cli;
mod metrics;
