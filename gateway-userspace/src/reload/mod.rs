//! The live configuration: built and validated off to the side, swapped in
//! whole, never replaced by a configuration with errors.
//!
//! - `store.rs`: the active snapshot, its generation and the swap.
//! - `watch.rs`: the triggers: changed files (including a ConfigMap's symlink
//!   swap) and SIGHUP; `POST /reload` comes through `admin.rs`.

mod store;
mod watch;

#[cfg(test)]
mod tests;

pub use store::{ActiveConfig, ApiReload, ConfigStore, RejectedDocument, ReloadOutcome, StartupError};
pub use watch::{watch_files, watch_sighup};
