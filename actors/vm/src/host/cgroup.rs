//! cgroup limits from `cpuCount` and `memoryMB` (plus a pids limit), for cgroup v1 (separate
//! `cpu`, `memory`, `pids` hierarchies) and v2 (one unified tree). Each sandbox gets
//! `<root>/<prefix>/<sandbox-id>`; every process of the sandbox joins it before it execs.
//! Removal kills whatever is left inside, then removes the directories. The file plan is pure and
//! unit-tested; this module must never touch cgroups outside its own prefix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::RuntimeError;

/// CFS period used for the CPU quota.
pub const CPU_PERIOD_US: u64 = 100_000;
/// Where cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Which cgroup layout the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Separate controller hierarchies under `/sys/fs/cgroup/<controller>`.
    V1,
    /// The unified hierarchy at `/sys/fs/cgroup`.
    V2,
}

impl CgroupVersion {
    /// v2 when `/sys/fs/cgroup` itself is a cgroup2 mount (it has `cgroup.controllers`).
    pub fn detect(root: &Path) -> Self {
        if root.join("cgroup.controllers").exists() {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        }
    }
}

/// Limits of one sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole CPUs.
    pub cpu_count: u32,
    /// MiB of memory.
    pub memory_mb: u32,
    /// Maximum number of processes.
    pub pids_max: u32,
}

/// The directories and files of one sandbox's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupPlan {
    /// Directories to create (parents first).
    pub dirs: Vec<PathBuf>,
    /// Parent `cgroup.subtree_control` files and what to write (v2 only).
    pub enable: Vec<(PathBuf, String)>,
    /// Limit files and their values.
    pub writes: Vec<(PathBuf, String)>,
    /// The `cgroup.procs` files a process writes its pid to.
    pub procs: Vec<PathBuf>,
    /// The sandbox-level directories to remove (leaf first is irrelevant: one level).
    pub leaves: Vec<PathBuf>,
    /// How to freeze the sandbox's processes (None when the host has no freezer).
    pub freezer: Option<Freezer>,
}

/// The freezer of one sandbox: v1 `freezer.state`, v2 `cgroup.freeze` + `cgroup.events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freezer {
    /// File to write.
    pub control: PathBuf,
    /// Value that freezes.
    pub freeze: &'static str,
    /// Value that thaws.
    pub thaw: &'static str,
    /// File to read back.
    pub state: PathBuf,
    /// Text the state file contains once frozen.
    pub frozen_marker: &'static str,
}

/// Plans the cgroup of `sandbox` under `prefix`.
pub fn plan(
    version: CgroupVersion,
    root: &Path,
    prefix: &str,
    sandbox: &str,
    limits: Limits,
) -> CgroupPlan {
    let quota = u64::from(limits.cpu_count) * CPU_PERIOD_US;
    let memory = u64::from(limits.memory_mb) * 1024 * 1024;
    match version {
        CgroupVersion::V1 => {
            let dir = |controller: &str| root.join(controller).join(prefix).join(sandbox);
            let (cpu, mem, pids) = (dir("cpu"), dir("memory"), dir("pids"));
            let mut plan = CgroupPlan {
                dirs: vec![cpu.clone(), mem.clone(), pids.clone()],
                enable: Vec::new(),
                writes: vec![
                    (cpu.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string()),
                    (cpu.join("cpu.cfs_quota_us"), quota.to_string()),
                    (mem.join("memory.limit_in_bytes"), memory.to_string()),
                    (pids.join("pids.max"), limits.pids_max.to_string()),
                ],
                procs: vec![
                    cpu.join("cgroup.procs"),
                    mem.join("cgroup.procs"),
                    pids.join("cgroup.procs"),
                ],
                leaves: vec![cpu, mem, pids],
                freezer: None,
            };
            if root.join("freezer").is_dir() {
                let freezer = dir("freezer");
                plan.dirs.push(freezer.clone());
                plan.procs.push(freezer.join("cgroup.procs"));
                plan.leaves.push(freezer.clone());
                plan.freezer = Some(Freezer {
                    control: freezer.join("freezer.state"),
                    freeze: "FROZEN",
                    thaw: "THAWED",
                    state: freezer.join("freezer.state"),
                    frozen_marker: "FROZEN",
                });
            }
            plan
        }
        CgroupVersion::V2 => {
            let parent = root.join(prefix);
            let leaf = parent.join(sandbox);
            CgroupPlan {
                dirs: vec![leaf.clone()],
                enable: vec![
                    (
                        root.join("cgroup.subtree_control"),
                        "+cpu +memory +pids".into(),
                    ),
                    (
                        parent.join("cgroup.subtree_control"),
                        "+cpu +memory +pids".into(),
                    ),
                ],
                writes: vec![
                    (leaf.join("cpu.max"), format!("{quota} {CPU_PERIOD_US}")),
                    (leaf.join("memory.max"), memory.to_string()),
                    (leaf.join("memory.swap.max"), "0".into()),
                    (leaf.join("pids.max"), limits.pids_max.to_string()),
                ],
                procs: vec![leaf.join("cgroup.procs")],
                freezer: Some(Freezer {
                    control: leaf.join("cgroup.freeze"),
                    freeze: "1",
                    thaw: "0",
                    state: leaf.join("cgroup.events"),
                    frozen_marker: "frozen 1",
                }),
                leaves: vec![leaf],
            }
        }
    }
}

/// The per-worker parent directories (for the reaper and census).
pub fn prefix_dirs(version: CgroupVersion, root: &Path, prefix: &str) -> Vec<PathBuf> {
    match version {
        CgroupVersion::V1 => ["cpu", "memory", "pids", "freezer"]
            .iter()
            .map(|controller| root.join(controller).join(prefix))
            .collect(),
        CgroupVersion::V2 => vec![root.join(prefix)],
    }
}

/// Creates the cgroup and applies the limits.
pub fn create(plan: &CgroupPlan) -> Result<(), RuntimeError> {
    for dir in &plan.dirs {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                RuntimeError::io(format!("creating cgroup {}", parent.display()), e)
            })?;
        }
        // Parents must enable controllers before the leaf exists (v2).
        for (file, value) in &plan.enable {
            if file.parent().is_some_and(Path::exists) {
                std::fs::write(file, value).map_err(|e| {
                    RuntimeError::io(format!("enabling controllers in {}", file.display()), e)
                })?;
            }
        }
        match std::fs::create_dir(dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => {
                return Err(RuntimeError::io(
                    format!("creating cgroup {}", dir.display()),
                    error,
                ))
            }
        }
    }
    for (file, value) in &plan.writes {
        // memory.swap.max is absent when swap accounting is off: that limit is moot then.
        if file.ends_with("memory.swap.max") && !file.exists() {
            continue;
        }
        std::fs::write(file, value)
            .map_err(|e| RuntimeError::io(format!("setting cgroup limit {}", file.display()), e))?;
    }
    Ok(())
}

/// How long a checkpoint waits for a sandbox's processes to freeze, and how often it looks.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);
const FREEZE_POLL: Duration = Duration::from_millis(5);

/// Freezes the sandbox's processes and waits until the kernel reports them frozen.
pub async fn freeze(freezer: &Freezer) -> Result<(), RuntimeError> {
    std::fs::write(&freezer.control, freezer.freeze)
        .map_err(|e| RuntimeError::io(format!("freezing {}", freezer.control.display()), e))?;
    // A busy sandbox on a loaded host can take seconds to reach a frozen state (seen in CI
    // with many sandboxes running at once); 10 s bounds it without failing for load alone.
    let attempts = FREEZE_TIMEOUT.as_millis() / FREEZE_POLL.as_millis();
    for _attempt in 0..attempts {
        let state = std::fs::read_to_string(&freezer.state).unwrap_or_default();
        if state.contains(freezer.frozen_marker) {
            return Ok(());
        }
        tokio::time::sleep(FREEZE_POLL).await;
    }
    thaw(freezer);
    Err(RuntimeError::Setup {
        step: "freezing the sandbox for a checkpoint",
        detail: format!(
            "its processes did not freeze within {} s; retry the checkpoint",
            FREEZE_TIMEOUT.as_secs()
        ),
    })
}

/// Lets the sandbox's processes run again.
pub fn thaw(freezer: &Freezer) {
    if let Err(error) = std::fs::write(&freezer.control, freezer.thaw) {
        tracing::warn!(file = %freezer.control.display(), error = %error, "thawing a sandbox failed");
    }
}

/// Kills every process in the given cgroup directories and removes them. Missing is fine.
pub async fn remove(leaves: &[PathBuf]) -> Result<(), RuntimeError> {
    for leaf in leaves {
        remove_one(leaf).await?;
    }
    Ok(())
}

async fn remove_one(leaf: &Path) -> Result<(), RuntimeError> {
    if !leaf.exists() {
        return Ok(());
    }
    // A process may still be exiting: kill, then retry rmdir for a bounded time.
    for _attempt in 0..400 {
        for pid in pids_in(leaf) {
            crate::system::kill_process(pid);
        }
        match std::fs::remove_dir(leaf) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    std::fs::remove_dir(leaf).map_err(|e| {
        RuntimeError::io(
            format!(
                "removing cgroup {} (processes still inside)",
                leaf.display()
            ),
            e,
        )
    })
}

/// Renames sandbox-level cgroup directories `from` to `to` (same controller order, as [`plan`]
/// lists them), processes and all: cgroup v1 allows a rename within one parent, and it spares
/// the per-process migration (each waits for an RCU grace period). Not for v2, which refuses it.
pub fn rename_leaves(from: &[PathBuf], to: &[PathBuf]) -> Result<(), RuntimeError> {
    for (old, new) in from.iter().zip(to) {
        std::fs::rename(old, new).map_err(|error| {
            RuntimeError::io(
                format!("renaming cgroup {} to {}", old.display(), new.display()),
                error,
            )
        })?;
    }
    Ok(())
}

/// Moves every process of the cgroup directories `from` into the matching `cgroup.procs` files
/// `to` (same controller order, as [`plan`] lists them), until `from` is empty. For a pooled
/// sandbox whose processes (the `unshare` parent and a pid 1 waiting for its name) never fork,
/// one pass suffices; a few more cover a process that appeared meanwhile.
pub fn migrate(from: &[PathBuf], to: &[PathBuf]) -> Result<(), RuntimeError> {
    for _pass in 0..4 {
        let mut moved_any = false;
        for (leaf, procs) in from.iter().zip(to) {
            for pid in pids_in(leaf) {
                moved_any = true;
                match std::fs::write(procs, pid.to_string()) {
                    Ok(()) => {}
                    // The process exited meanwhile: nothing to move.
                    Err(error) if error.raw_os_error() == Some(nix::libc::ESRCH) => {}
                    Err(error) => {
                        return Err(RuntimeError::io(
                            format!("moving pid {pid} into {}", procs.display()),
                            error,
                        ))
                    }
                }
            }
        }
        if !moved_any {
            return Ok(());
        }
    }
    Err(RuntimeError::Setup {
        step: "moving the pooled sandbox's processes into its cgroup",
        detail: "processes kept appearing in the pool's cgroup; the sandbox is torn down".into(),
    })
}

/// Pids listed in a cgroup directory's `cgroup.procs`.
pub fn pids_in(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|text| {
            text.lines()
                .filter_map(|line| line.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Sandbox-level cgroup directories under the worker's prefix dirs.
pub fn leaves_under(prefix_dirs: &[PathBuf]) -> Vec<PathBuf> {
    prefix_dirs
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.filter_map(Result::ok))
        .filter(|entry| entry.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|entry| entry.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        cpu_count: 2,
        memory_mb: 256,
        pids_max: 100,
    };

    #[test]
    fn v1_plan_uses_three_hierarchies() {
        let plan = plan(CgroupVersion::V1, Path::new("/cg"), "osb", "sbx_1", LIMITS);
        assert_eq!(plan.procs.len(), 3);
        assert!(plan.writes.contains(&(
            PathBuf::from("/cg/cpu/osb/sbx_1/cpu.cfs_quota_us"),
            "200000".into()
        )));
        assert!(plan.writes.contains(&(
            PathBuf::from("/cg/memory/osb/sbx_1/memory.limit_in_bytes"),
            (256u64 * 1024 * 1024).to_string()
        )));
        assert!(plan
            .writes
            .contains(&(PathBuf::from("/cg/pids/osb/sbx_1/pids.max"), "100".into())));
    }

    #[test]
    fn v2_plan_enables_controllers_and_writes_unified_limits() {
        let plan = plan(CgroupVersion::V2, Path::new("/cg"), "osb", "sbx_1", LIMITS);
        assert_eq!(
            plan.freezer.map(|f| f.control),
            Some(PathBuf::from("/cg/osb/sbx_1/cgroup.freeze"))
        );
        assert_eq!(
            plan.procs,
            vec![PathBuf::from("/cg/osb/sbx_1/cgroup.procs")]
        );
        assert!(plan.writes.contains(&(
            PathBuf::from("/cg/osb/sbx_1/cpu.max"),
            "200000 100000".into()
        )));
        assert_eq!(plan.enable.len(), 2);
    }

    #[test]
    fn version_detection_looks_for_cgroup_controllers() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(CgroupVersion::detect(dir.path()), CgroupVersion::V1);
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu").unwrap();
        assert_eq!(CgroupVersion::detect(dir.path()), CgroupVersion::V2);
    }
}
