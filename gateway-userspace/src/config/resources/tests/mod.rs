//! Unit tests of the resource shapes, one file per source file.

mod common;
mod gateway;
