//! Unit tests of the workload CA, one file per source file.

mod checks;
