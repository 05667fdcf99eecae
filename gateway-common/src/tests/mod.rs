//! Host tests of the pure parts the kernel programs share.

mod addr;
mod redirect;
