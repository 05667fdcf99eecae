//! Unit tests of the crate's top-level files, one file per source file.

mod cli;
mod metrics;
