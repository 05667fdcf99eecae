//! The gateway role's HTTP/2 server limits, set explicitly against the
//! request floods an HTTP/2 listener meets, whatever hyper's and h2's
//! defaults become. h2 0.4.20 (Cargo.lock) already carries the fixes these
//! settings tune: rapid reset (CVE-2023-44487, since 0.3.22/0.4.0), local
//! error resets (RUSTSEC-2024-0003, 0.4.2) and CONTINUATION floods
//! (0.4.4), each ending the connection with GOAWAY `ENHANCE_YOUR_CALM`.

use hyper_util::server::conn::auto::Http2Builder;

/// Requests open at once on one connection (`SETTINGS_MAX_CONCURRENT_STREAMS`),
/// Envoy's order of magnitude; a client wanting more opens more connections,
/// each counted against `--max-connections-per-listener`.
pub(super) const MAX_CONCURRENT_STREAMS: u32 = 100;

/// Streams the client reset before the server took them (rapid reset: each
/// costs a header decode and no request). Past this many pending, GOAWAY.
pub(super) const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// Streams the server had to reset for the client's errors (malformed
/// headers, oversized lists) on one connection before it sends GOAWAY: a
/// client that only provokes errors gets no more work out of the server.
pub(super) const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 256;

/// Applies the limits; `max_header_bytes` (`--max-header-bytes`) bounds
/// the decoded header list (`SETTINGS_MAX_HEADER_LIST_SIZE`), which also
/// bounds how many CONTINUATION frames h2 accepts for one header block.
pub(super) fn apply<E>(h2: &mut Http2Builder<'_, E>, max_header_bytes: usize) {
    h2.max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
        .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX));
}
