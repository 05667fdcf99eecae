//! Unit tests of the live configuration, one file per source file.

mod watch;
