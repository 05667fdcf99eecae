//! The build variant: one constant each program stores on its own stack, and
//! nothing reads, and one entry less in the exemption map. Two variants of
//! the same sources thus differ in their instructions (and program tags) and
//! in one map's definition, and in nothing they do. The default build is
//! variant 0; the `variant` feature builds variant 1, which the tests run as
//! "another build" to replace the programs of a running gateway in place,
//! keeping the maps that did not change and replacing the one that did.

use gateway_common::EXEMPT_CAPACITY;

#[cfg(not(feature = "variant"))]
const VARIANT: u64 = 0;
#[cfg(feature = "variant")]
const VARIANT: u64 = 1;

/// The exemption map's capacity.
#[cfg(not(feature = "variant"))]
pub const EXEMPT_ENTRIES: u32 = EXEMPT_CAPACITY;
#[cfg(feature = "variant")]
pub const EXEMPT_ENTRIES: u32 = EXEMPT_CAPACITY - 1;

/// Puts the variant into the program's instructions.
#[inline(always)]
pub fn mark() {
    let mut slot = 0u64;
    // SAFETY: a write to a local; volatile so that it stays in the program.
    unsafe { core::ptr::write_volatile(&raw mut slot, VARIANT) };
}
