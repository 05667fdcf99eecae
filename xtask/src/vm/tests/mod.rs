//! Unit tests, one file per source file.

mod report;
