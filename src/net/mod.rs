//! Bounds on the connections every listener accepts, below any protocol.
//!
//! One misbehaving or hostile client must not exhaust the one point of
//! verification, so each listener (the gRPC port, the side port) accepts
//! through [`accept::spawn`]: at most a configured number of connections at
//! once (at the cap accepting pauses, so the excess waits in the kernel's
//! backlog and costs no file descriptor), accept errors back off instead of
//! spinning, and each connection is [`Guarded`] by deadlines: its first bytes
//! within a bound (a TCP connection that never sends the HTTP/2 preface or
//! an HTTP request is closed), optionally an idle and a lifetime bound, and
//! for gRPC a stall bound on answers the peer does not read.

pub mod accept;
mod guarded;
pub mod http1;

pub use guarded::{ConnectionLimits, ConnectionState, Deadlines, Guarded, UnreadAnswer};

/// Events the connection bounds report (metrics hang off these).
pub trait ConnectionObserver: Send + Sync {
    /// `accept` failed on `listener` (e.g. EMFILE); the loop backs off.
    fn accept_failed(&self, _listener: &'static str) {}
    /// A connection of `listener` was closed by a bound (`reason`: `preface_timeout`,
    /// `idle_timeout`, `lifetime`, `stalled`).
    fn closed_by_bound(&self, _listener: &'static str, _reason: &'static str) {}
    /// A call was refused because its connection does not read its answers.
    fn answer_refused(&self) {}
}

/// File descriptors kept free of a listener's connections: the side port's
/// connections, JWKS and GetUser clients, the log, the runtime's own.
pub const RESERVED_FILES: u64 = 256;

/// `wanted` connections, or fewer when the open-file limit could not hold
/// them besides [`RESERVED_FILES`]: at the cap accepting pauses instead of
/// failing with EMFILE, so the rest of the process keeps its descriptors.
pub fn connections_within_file_limit(wanted: usize) -> usize {
    let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        return wanted;
    };
    let room = soft.saturating_sub(RESERVED_FILES).max(1);
    let fitted = wanted.min(usize::try_from(room).unwrap_or(usize::MAX));
    if fitted < wanted {
        tracing::warn!(
            wanted,
            fitted,
            open_file_limit = soft,
            "max_connections lowered to fit the open-file limit; raise the limit (ulimit -n) to allow more"
        );
    }
    fitted
}

/// Raises the soft limit on open files to the hard limit, as most servers do:
/// the soft default (often 1,024) is far below what a connection flood needs,
/// while the hard limit is what the operator allowed. Returns (before, after).
pub fn raise_open_file_limit() -> std::io::Result<(u64, u64)> {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    if soft >= hard {
        return Ok((soft, soft));
    }
    let raised = rlimit::increase_nofile_limit(hard)?;
    Ok((soft, raised))
}
