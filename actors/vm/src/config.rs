//! Configuration of the netns runtime: which names and addresses it owns, where it keeps its
//! files and how sandbox processes run. Everything has a default a single worker can use; tests
//! and multi-worker hosts give each runtime its own prefix, pool and data dir. This module must
//! never touch the system.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use crate::pool::Ipv4Pool;
use crate::spec::ProxyEndpoints;

/// Default address pool: inside the shared address space 100.64.0.0/10, 16383 sandboxes.
pub const DEFAULT_ADDRESS_POOL: &str = "100.96.0.0/16";
/// Default worker name prefix. Keep it stable across restarts of one worker (the reaper finds
/// orphans by it); give each worker sharing a host its own.
pub const DEFAULT_NAME_PREFIX: &str = "osb";
/// Default size of a sandbox's disk (its writable layer's file system) in MiB, and the most a
/// spec may ask for (ADR 0207). Sparse: only what the sandbox writes uses the worker's space.
pub const DEFAULT_SANDBOX_DISK_MB: u32 = 4096;
/// Largest warm pool a worker may keep (each pooled sandbox holds a slot, a disk, a netns and
/// a pid 1).
pub const MAX_WARM_POOL: usize = 64;
/// Default uid/gid of sandbox processes (no capabilities, `nosuid` system tree).
pub const DEFAULT_SANDBOX_UID: u32 = 1000;

/// Settings of a `NetnsRuntime`.
#[derive(Debug, Clone)]
pub struct NetnsConfig {
    /// Prefix of every host object this runtime creates (2-8 of `[a-z0-9]`). The orphan reaper
    /// removes everything carrying it, so two workers on one host need different prefixes.
    pub name_prefix: String,
    /// Directory owned by this worker: sandbox layers, checkpoints, snapshots.
    pub data_dir: PathBuf,
    /// Pool the sandbox links are cut from.
    pub address_pool: Ipv4Pool,
    /// Where the sandbox resolver listens (port 0 picks a free port). Sandboxes reach it through
    /// their gateway on udp/53, redirected by the per-sandbox rules.
    pub resolver_bind: SocketAddr,
    /// uid of processes inside sandboxes.
    pub sandbox_uid: u32,
    /// gid of processes inside sandboxes.
    pub sandbox_gid: u32,
    /// Process limit per sandbox.
    pub pids_max: u32,
    /// How long boot may take before create fails.
    pub boot_timeout: Duration,
    /// Extra host directories bound read-only into host-system sandboxes (besides `/usr` and
    /// the `/lib*`, `/bin`, `/sbin` trees), e.g. `/opt`.
    pub extra_system_dirs: Vec<PathBuf>,
    /// Size in MiB of each sandbox's disk holding its writable layer: the most a sandbox can
    /// write to the worker's data filesystem. Also the largest `diskMB` a spec may ask for.
    pub disk_mb: u32,
    /// How many pre-built sandboxes the worker keeps ready for creates that fit them
    /// (`netns::warm_pool`, ADR 0208); 0 (the default here) builds every sandbox on demand.
    pub warm_pool: usize,
    /// The proxy ports creates on this worker will name, when known: pooled sandboxes get
    /// their egress rules for them ahead of time (behind a downed link) and a claim of a spec
    /// with these ports skips its nftables transaction. None: the pool learns them from claims.
    pub warm_pool_proxy: Option<ProxyEndpoints>,
}

impl NetnsConfig {
    /// Defaults with the default prefix (`osb`), for a worker alone on its host.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self::new(DEFAULT_NAME_PREFIX, data_dir)
    }

    /// Defaults for a worker with this prefix and data dir.
    pub fn new(name_prefix: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            name_prefix: name_prefix.into(),
            data_dir: data_dir.into(),
            address_pool: Ipv4Pool::DEFAULT,
            resolver_bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
            sandbox_uid: DEFAULT_SANDBOX_UID,
            sandbox_gid: DEFAULT_SANDBOX_UID,
            pids_max: 1024,
            boot_timeout: Duration::from_secs(10),
            extra_system_dirs: Vec::new(),
            disk_mb: DEFAULT_SANDBOX_DISK_MB,
            warm_pool: 0,
            warm_pool_proxy: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pool_is_the_documented_one() {
        let config = NetnsConfig::new("osb", "/var/lib/osb");
        assert_eq!(config.address_pool.to_string(), DEFAULT_ADDRESS_POOL);
    }
}
