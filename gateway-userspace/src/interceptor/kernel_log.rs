//! The kernel programs' own log lines (`gateway-ebpf/src/log.rs`), printed
//! by the agent with `--kernel-log`.
//!
//! aya-log's level is a read-only global fixed when the programs are loaded;
//! 0 turns every line into dead code, which the verifier removes. The lines
//! arrive in aya-log's ring buffer (`AYA_LOGS`, pinned with the other maps so
//! a restarted agent reads the same one) and are printed as `tracing` events
//! with the target `kernel`.

use aya_log::EbpfLogger;
use tokio::io::unix::AsyncFd;

use super::{InterceptorError, PinLayout, pins::PROGRAMS};

/// aya-log's level for the programs: every level, or none.
pub fn level(on: bool) -> u8 {
    if on { aya_log::Level::Trace as u8 } else { 0 }
}

/// Starts printing the lines of the programs pinned under `layout`.
pub fn spawn(layout: &PinLayout) -> Result<(), InterceptorError> {
    let program = PROGRAMS[0];
    let pin = layout.prog(program);
    let id = aya::programs::ProgramInfo::from_pin(&pin)
        .map_err(|source| InterceptorError::Program { name: program.to_string(), source })?
        .id();
    let logger = EbpfLogger::init_from_id_with_logger(id, ToTracing)
        .map_err(|e| InterceptorError::Object(format!("kernel log ring buffer of {program}: {e}")))?;
    // SAFETY: the logger owns the ring buffer's descriptor, and the AsyncFd
    // owns the logger: the descriptor stays open and the same while registered.
    let mut ring = unsafe { AsyncFd::register(logger) }.map_err(|e| super::pins::io(&pin, e.into()))?;
    tokio::spawn(async move {
        loop {
            let mut ready = match ring.readable_mut().await {
                Ok(ready) => ready,
                Err(e) => {
                    tracing::warn!(error = %e, "kernel log: the ring buffer failed; no more kernel lines");
                    return;
                }
            };
            ready.get_inner_mut().flush();
            ready.clear_ready();
        }
    });
    tracing::info!("kernel log on: the kernel programs say why they deny or drop");
    Ok(())
}

/// Hands aya-log's records to `tracing`, target `kernel`.
struct ToTracing;

impl log::Log for ToTracing {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = record.args();
        match record.level() {
            log::Level::Error => tracing::error!(target: "kernel", "{line}"),
            log::Level::Warn => tracing::warn!(target: "kernel", "{line}"),
            log::Level::Info => tracing::info!(target: "kernel", "{line}"),
            log::Level::Debug | log::Level::Trace => tracing::debug!(target: "kernel", "{line}"),
        }
    }

    fn flush(&self) {}
}
