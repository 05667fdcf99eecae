//! Unit tests, one file per source file.

mod instructions;
mod modes;
mod report;
mod results;
mod profile;
