//! Command-line helpers the proxy's bench binaries share (`bench_proxy`, `bench_tls_floor`).

/// The value after `name` on the command line, if any.
pub fn argument(name: &str) -> Option<String> {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|a| a == name)
        .and_then(|i| arguments.get(i + 1).cloned())
}

/// A multi-thread runtime with `--workers` worker threads (2 when absent).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    let workers: usize = argument("--workers")
        .unwrap_or_else(|| "2".into())
        .parse()
        .map_err(|e| format!("--workers: {e}"))?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}
