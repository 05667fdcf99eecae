//! Unit tests of the HTTP pipeline's shared phases.

mod phases;
