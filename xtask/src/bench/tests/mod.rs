//! Unit tests, one file per source file.

mod instructions;
mod modes;
mod procs;
mod report;
mod results;
mod profile;
