//! Operator settings shared by `osbd up` and `osbd worker`, read from the environment:
//! proxy overrides for private upstreams (`OPENSANDBOX_PROXY_RESOLVE="host=addr,…"`,
//! `OPENSANDBOX_PROXY_EXTRA_CA=<pem file>`, `OPENSANDBOX_PROXY_ALLOW_LOOPBACK=1`,
//! `OPENSANDBOX_PROXY_ALLOW_PRIVATE=1`) and worker capacity. Bad values are usage errors that
//! name the variable; nothing is silently ignored.

use std::collections::HashMap;

use osb_placement::Capacity;
use osb_proxy::parse_resolve_override;

use super::context::CommandError;
use osb_worker::ProxyOptions;

pub const PROXY_RESOLVE_ENV: &str = "OPENSANDBOX_PROXY_RESOLVE";
pub const PROXY_EXTRA_CA_ENV: &str = "OPENSANDBOX_PROXY_EXTRA_CA";
pub const PROXY_ALLOW_LOOPBACK_ENV: &str = "OPENSANDBOX_PROXY_ALLOW_LOOPBACK";
pub const PROXY_ALLOW_PRIVATE_ENV: &str = "OPENSANDBOX_PROXY_ALLOW_PRIVATE";

fn flag(name: &str) -> Result<bool, CommandError> {
    match std::env::var(name).ok().as_deref().map(str::trim) {
        None | Some("") | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(other) => Err(CommandError::Usage(format!(
            "{name}={other:?} is not a flag; use 1 or 0"
        ))),
    }
}

/// The proxy settings from the environment.
pub(crate) fn proxy_options() -> Result<ProxyOptions, CommandError> {
    let mut resolve_overrides = HashMap::new();
    if let Ok(list) = std::env::var(PROXY_RESOLVE_ENV) {
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (host, address) = parse_resolve_override(entry).map_err(|error| {
                CommandError::Usage(format!("{PROXY_RESOLVE_ENV}: {}", error.0))
            })?;
            resolve_overrides.insert(host, address);
        }
    }
    let mut extra_upstream_ca_pems = Vec::new();
    if let Some(path) = std::env::var_os(PROXY_EXTRA_CA_ENV).filter(|p| !p.is_empty()) {
        let pem = std::fs::read(&path).map_err(|error| {
            CommandError::Usage(format!(
                "{PROXY_EXTRA_CA_ENV}: cannot read {}: {error}",
                std::path::Path::new(&path).display()
            ))
        })?;
        extra_upstream_ca_pems.push(pem);
    }
    Ok(ProxyOptions {
        resolve_overrides,
        extra_upstream_ca_pems,
        allow_loopback: flag(PROXY_ALLOW_LOOPBACK_ENV)?,
        allow_private: flag(PROXY_ALLOW_PRIVATE_ENV)?,
        skip_system_roots: false,
    })
}

/// What one worker offers: by default the machine's CPUs and three quarters of its memory.
pub(crate) fn default_capacity() -> Capacity {
    let cpus = std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(2);
    let memory_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("MemTotal:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(4096, |kib| kib / 1024 * 3 / 4);
    Capacity {
        sandboxes: 256,
        // Sandboxes share CPUs: oversubscribe four times.
        cpu_count: cpus.saturating_mul(4),
        memory_mb,
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
