//! Unit tests of the cross-field checks, one file per source file.

mod tls_files;
