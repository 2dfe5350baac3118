//! Finding and removing what a worker owns on the host: namespaces, veths, nftables tables,
//! cgroups (with any process still inside), sandbox disks (mounts and loop devices whose image
//! lies in the data dir, ADR 0207) and sandbox directories, all recognised by the worker's name
//! prefix or data dir. `census` counts them (tests assert no leak; admins can look);
//! `reap` removes them (at startup, after a crash). This module must never touch an object
//! whose name does not carry this worker's prefix, nor a mount or loop device outside its data
//! dir.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::RuntimeError;
use crate::host::cgroup::{self, CgroupVersion};
use crate::host::{firewall, mounts, network};
use crate::naming::Naming;

/// Name prefix of a pooled (unclaimed) sandbox's directory under `<data dir>/sandboxes`.
pub const POOLED_DIR_PREFIX: &str = "warm-";

/// How many host objects of one worker exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ResourceCensus {
    /// Network namespaces in `/run/netns`.
    pub netns: usize,
    /// Host-side veths.
    pub veths: usize,
    /// nftables tables.
    pub nft_tables: usize,
    /// Sandbox cgroup directories (all controllers).
    pub cgroups: usize,
    /// Processes inside those cgroups.
    pub processes: usize,
    /// Sandbox directories in the data dir (pooled ones included).
    pub sandbox_dirs: usize,
    /// Of those, the warm pool's unclaimed sandboxes (directories named `warm-…`); the rest
    /// are claimed or cold-created sandboxes.
    pub pooled: usize,
    /// Host mount-table entries naming the data dir or our namespaces.
    pub mounts: usize,
    /// Loop devices backed by a file in the data dir (sandbox disks).
    pub loop_devices: usize,
}

impl ResourceCensus {
    /// Whether nothing at all is left.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What the census and reaper look at.
#[derive(Debug, Clone)]
pub struct Owned<'a> {
    /// The worker's naming scheme.
    pub naming: &'a Naming,
    /// cgroup layout.
    pub cgroup_version: CgroupVersion,
    /// The worker's data dir.
    pub data_dir: &'a Path,
}

impl Owned<'_> {
    fn cgroup_prefix_dirs(&self) -> Vec<PathBuf> {
        cgroup::prefix_dirs(
            self.cgroup_version,
            Path::new(cgroup::CGROUP_ROOT),
            self.naming.prefix(),
        )
    }

    fn netns_names(&self) -> Vec<String> {
        names_in(Path::new("/run/netns"), |name| self.naming.owns_netns(name))
    }

    fn veth_names(&self) -> Vec<String> {
        names_in(Path::new("/sys/class/net"), |name| {
            self.naming.owns_veth(name)
        })
    }

    fn sandbox_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.data_dir.join("sandboxes"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn names_in(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| keep(name))
                .collect()
        })
        .unwrap_or_default()
}

/// Counts everything the worker owns.
pub async fn census(owned: &Owned<'_>) -> Result<ResourceCensus, RuntimeError> {
    let leaves = cgroup::leaves_under(&owned.cgroup_prefix_dirs());
    let processes = leaves.iter().map(|leaf| cgroup::pids_in(leaf).len()).sum();
    let nft_tables = firewall::list_tables()
        .await?
        .iter()
        .filter(|name| owned.naming.owns_nft_table(name))
        .count();
    let data_dir = owned.data_dir.display().to_string();
    let netns_marker = format!("/run/netns/{}-n", owned.naming.prefix());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| {
            text.lines()
                .filter(|line| line.contains(&data_dir) || line.contains(&netns_marker))
                .count()
        })
        .unwrap_or(0);
    Ok(ResourceCensus {
        netns: owned.netns_names().len(),
        veths: owned.veth_names().len(),
        nft_tables,
        cgroups: leaves.len(),
        processes,
        sandbox_dirs: owned.sandbox_dirs().len(),
        pooled: owned
            .sandbox_dirs()
            .iter()
            .filter(|dir| {
                dir.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with(POOLED_DIR_PREFIX))
            })
            .count(),
        mounts,
        loop_devices: mounts::loops_backed_under(owned.data_dir).len(),
    })
}

/// Removes everything the worker owns (processes first, then rules, links, cgroups, disks,
/// files).
pub async fn reap(owned: &Owned<'_>) -> Result<ResourceCensus, RuntimeError> {
    let before = census(owned).await?;
    let prefix_dirs = owned.cgroup_prefix_dirs();
    cgroup::remove(&cgroup::leaves_under(&prefix_dirs)).await?;
    for table in firewall::list_tables().await? {
        if owned.naming.owns_nft_table(&table) {
            firewall::remove(&table).await;
        }
    }
    for name in owned.netns_names() {
        network::remove(&name, "").await;
    }
    for veth in owned.veth_names() {
        network::remove("", &veth).await;
    }
    // Disks come down before any directory is deleted: never delete through a mount.
    mounts::take_down_under(&owned.data_dir.join("sandboxes")).await?;
    for dir in owned.sandbox_dirs() {
        let result = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await;
        if let Ok(Err(error)) = result {
            tracing::warn!(error = %error, "removing an orphaned sandbox directory failed");
        }
    }
    for dir in prefix_dirs {
        // Empty by now; a failure only leaves an empty directory behind.
        let _ = std::fs::remove_dir(dir);
    }
    if !before.is_empty() {
        tracing::info!(
            netns = before.netns,
            veths = before.veths,
            nft_tables = before.nft_tables,
            cgroups = before.cgroups,
            processes = before.processes,
            sandbox_dirs = before.sandbox_dirs,
            mounts = before.mounts,
            loop_devices = before.loop_devices,
            "reaped orphaned sandbox resources"
        );
    }
    Ok(before)
}
