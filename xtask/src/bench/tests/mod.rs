//! Unit tests, one file per source file.

mod modes;
mod report;
mod results;
mod profile;
