//! Unit tests of the I/O toolkit, one file per source file.

mod rewind;
