//! The `token-validator` binary: parse the command line, hand over to the library.

/// mimalloc rather than glibc's malloc: the gRPC stack allocates and frees
/// small buffers on every call, often on different worker threads, where
/// glibc's arena locks showed up in profiles (`__lll_lock_wait_private`). An
/// A/B run of the same build gave +2–8% cache-hit and ~+5% full-check
/// throughput (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    token_validator::cli::main()
}
