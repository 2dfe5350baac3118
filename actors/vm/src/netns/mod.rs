//! The `netns` runtime (Linux, root): each sandbox is a network namespace joined to the host by
//! a veth pair, its own pid/mount/uts/ipc namespaces, an overlay root over a read-only system
//! tree whose writable layer lives on a size-limited disk of its own (ADR 0207), cgroup limits,
//! and per-sandbox nftables rules that let traffic out only through the worker proxy and
//! resolver. Creation is all-or-nothing: any failure tears down what was built.
//! This module must never start a sandbox process before its egress rules are in place, and
//! never let a sandbox see the worker's data dir or another sandbox.

pub mod boot;
pub mod disk;
pub mod rootfs;

// The host-side pieces moved to `crate::host` (shared with the microVM runtime); these paths
// stay for existing callers.
pub use crate::host::{cgroup, firewall, network, reaper};

mod sandbox;

pub(crate) use sandbox::sandbox_hostname;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use osb_proto::{CheckpointId, SandboxId};

use crate::checkpoint::CheckpointMeta;
use crate::config::NetnsConfig;
use crate::error::RuntimeError;
use crate::events::EventSink;
use crate::host::table::{Entry, SandboxTable};
use crate::host::{lifecycle, HostContext};
use crate::naming::Naming;
use crate::runtime::{ExecOutput, ExecRequest, ExecStream, Isolation, Runtime, SandboxInfo};
use crate::spec::{BootLayer, SandboxSpec, HOST_SYSTEM_TEMPLATE};
use crate::system::{is_root, tool_exists};

pub use reaper::ResourceCensus;
pub use rootfs::Template;
use sandbox::Sandbox;

/// Host tools the runtime needs (Debian: iproute2, nftables, util-linux, coreutils); the disk
/// quota's formatter is checked apart (`disk::unavailable_reason`, e2fsprogs).
pub const REQUIRED_TOOLS: [&str; 8] = [
    "ip", "nft", "nsenter", "unshare", "mount", "umount", "losetup", "cp",
];

/// The network-namespace runtime.
#[derive(Clone)]
pub struct NetnsRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NetnsRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetnsRuntime")
            .field("prefix", &self.inner.host.config.name_prefix)
            .field("pool", &self.inner.host.config.address_pool.to_string())
            .finish_non_exhaustive()
    }
}

/// The steps of `create`, in order (for fault injection in tests of the undo path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateStep {
    /// The sandbox's disk image, mounted, with the overlay's upper/work dirs on it.
    Disk,
    /// Base layer (minimal /etc, CA trust store), boot layer copy.
    FileTree,
    /// cgroup directories and limits.
    Cgroup,
    /// Network namespace and veth pair.
    Network,
    /// nftables table.
    Firewall,
    /// Resolver policy registration.
    DnsPolicy,
    /// Pid 1 running.
    Boot,
}

impl CreateStep {
    /// Every step, in order.
    pub const ALL: [CreateStep; 7] = [
        CreateStep::Disk,
        CreateStep::FileTree,
        CreateStep::Cgroup,
        CreateStep::Network,
        CreateStep::Firewall,
        CreateStep::DnsPolicy,
        CreateStep::Boot,
    ];
}

pub(crate) struct Inner {
    pub(crate) host: HostContext,
    pub(crate) disks: disk::DiskTemplates,
    pub(crate) sandboxes: SandboxTable<Sandbox>,
    pub(crate) templates: RwLock<HashMap<String, Template>>,
    pub(crate) injected_fault: Mutex<Option<CreateStep>>,
}

/// Why the netns runtime cannot run on this host (the caller falls back to the development
/// runtime and says so).
pub fn unavailable_reason() -> Option<String> {
    if !is_root() {
        return Some("the worker does not run as root".to_owned());
    }
    let missing: Vec<&str> = REQUIRED_TOOLS
        .into_iter()
        .filter(|tool| !tool_exists(tool))
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "required host tools are missing: {} (install iproute2, nftables, util-linux)",
            missing.join(", ")
        ));
    }
    disk::unavailable_reason()
}

/// Removes everything a worker with this prefix and data dir owns on the host (processes,
/// namespaces, veths, rules, cgroups, disk mounts and loop devices, sandbox directories) without
/// a running runtime: for crash recovery tooling and test guards. Returns what was found.
pub async fn reap_worker(prefix: &str, data_dir: &Path) -> Result<ResourceCensus, RuntimeError> {
    let naming = Naming::new(prefix).map_err(|e| RuntimeError::Setup {
        step: "reaping a worker's resources",
        detail: e.to_string(),
    })?;
    reaper::reap(&reaper::Owned {
        naming: &naming,
        cgroup_version: cgroup::CgroupVersion::detect(Path::new(cgroup::CGROUP_ROOT)),
        data_dir,
    })
    .await
}

/// Counts what a worker with this prefix and data dir owns on the host.
pub async fn census_worker(prefix: &str, data_dir: &Path) -> Result<ResourceCensus, RuntimeError> {
    let naming = Naming::new(prefix).map_err(|e| RuntimeError::Setup {
        step: "counting a worker's resources",
        detail: e.to_string(),
    })?;
    reaper::census(&reaper::Owned {
        naming: &naming,
        cgroup_version: cgroup::CgroupVersion::detect(Path::new(cgroup::CGROUP_ROOT)),
        data_dir,
    })
    .await
}

impl NetnsRuntime {
    /// Checks the host, reaps orphans of a previous run with the same prefix, starts the
    /// resolver and registers the host-system template.
    pub async fn new(config: NetnsConfig, sink: Arc<dyn EventSink>) -> Result<Self, RuntimeError> {
        if let Some(reason) = unavailable_reason() {
            return Err(RuntimeError::Setup {
                step: "starting the netns runtime",
                detail: reason,
            });
        }
        let host = HostContext::start(config, sink).await?;
        let disks = disk::DiskTemplates::start(&host.config.data_dir, host.config.disk_mb).await?;
        let mut templates = HashMap::new();
        templates.insert(
            HOST_SYSTEM_TEMPLATE.to_owned(),
            Template::host_system(&host.config.extra_system_dirs),
        );
        tracing::info!(
            prefix = %host.config.name_prefix,
            pool = %host.config.address_pool,
            resolver = %host.resolver.local_addr(),
            disk_mb = disks.default_mb(),
            "netns sandbox runtime ready"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                host,
                disks,
                sandboxes: SandboxTable::default(),
                templates: RwLock::new(templates),
                injected_fault: Mutex::new(None),
            }),
        })
    }

    /// Registers a directory holding a root file system as template `name`.
    pub fn register_template(&self, name: &str, dir: &Path) -> Result<(), RuntimeError> {
        if name == HOST_SYSTEM_TEMPLATE || name.is_empty() || name.len() > 64 {
            return Err(RuntimeError::BadTemplate {
                path: dir.display().to_string(),
                why: format!("the name {name:?} is reserved or not 1-64 characters"),
            });
        }
        let template = Template::directory(dir)?;
        if let Ok(mut templates) = self.inner.templates.write() {
            templates.insert(name.to_owned(), template);
        }
        Ok(())
    }

    /// Makes every following `create` fail right after `step` (None: never). For tests that
    /// prove a failure at any step undoes everything; never set in production.
    pub fn inject_create_fault(&self, step: Option<CreateStep>) {
        if let Ok(mut fault) = self.inner.injected_fault.lock() {
            *fault = step;
        }
    }

    /// The resolver's bound address.
    pub fn resolver_addr(&self) -> std::net::SocketAddr {
        self.inner.host.resolver.local_addr()
    }

    /// Counts the host objects this worker owns.
    pub async fn census(&self) -> Result<ResourceCensus, RuntimeError> {
        reaper::census(&self.inner.owned()).await
    }

    /// Destroys every sandbox of this runtime (worker shutdown).
    pub async fn shutdown(&self) -> Result<(), RuntimeError> {
        for id in self.inner.sandboxes.ids() {
            self.destroy(id).await?;
        }
        reaper::reap(&self.inner.owned()).await.map(drop)
    }

    fn sandbox(&self, id: SandboxId) -> Result<Entry<Sandbox>, RuntimeError> {
        self.inner.sandboxes.get(id)
    }
}

impl Inner {
    pub(crate) fn fail_if_injected(&self, step: CreateStep) -> Result<(), RuntimeError> {
        let injected = self.injected_fault.lock().ok().and_then(|fault| *fault);
        if injected == Some(step) {
            return Err(RuntimeError::Setup {
                step: "creating the sandbox",
                detail: format!("fault injected after step {step:?}"),
            });
        }
        Ok(())
    }

    pub(crate) fn owned(&self) -> reaper::Owned<'_> {
        self.host.owned()
    }
}

#[async_trait]
impl Runtime for NetnsRuntime {
    fn isolation(&self) -> Isolation {
        Isolation::Enforced
    }

    async fn create(&self, spec: SandboxSpec) -> Result<SandboxInfo, RuntimeError> {
        let id = spec.id;
        if self.sandbox(id).is_ok() {
            return Err(RuntimeError::AlreadyExists(id));
        }
        let sandbox = Sandbox::create(&self.inner, spec).await?;
        let info = sandbox.info();
        self.inner.sandboxes.insert(id, sandbox)?;
        Ok(info)
    }

    async fn exec(&self, id: SandboxId, request: ExecRequest) -> Result<ExecOutput, RuntimeError> {
        let (command, timeout) = self
            .sandbox(id)?
            .lock()
            .await
            .exec_command(&self.inner, &request)?;
        crate::exec::run_bounded(command, timeout, request.max_output_bytes).await
    }

    async fn exec_streaming(
        &self,
        id: SandboxId,
        request: ExecRequest,
    ) -> Result<ExecStream, RuntimeError> {
        let (command, timeout) = self
            .sandbox(id)?
            .lock()
            .await
            .exec_command(&self.inner, &request)?;
        crate::exec::spawn_streaming(command, timeout)
    }

    async fn info(&self, id: SandboxId) -> Result<SandboxInfo, RuntimeError> {
        Ok(self.sandbox(id)?.lock().await.info())
    }

    async fn stop(&self, id: SandboxId) -> Result<(), RuntimeError> {
        self.sandbox(id)?.lock().await.stop().await;
        Ok(())
    }

    async fn start(&self, id: SandboxId) -> Result<(), RuntimeError> {
        self.sandbox(id)?.lock().await.start(&self.inner).await
    }

    async fn destroy(&self, id: SandboxId) -> Result<(), RuntimeError> {
        match self.inner.sandboxes.remove(id) {
            Some(sandbox) => sandbox.lock().await.teardown(&self.inner).await,
            None => Ok(()),
        }
    }

    async fn checkpoint(&self, id: SandboxId) -> Result<CheckpointMeta, RuntimeError> {
        let sandbox = self.sandbox(id)?;
        let guard = sandbox.lock().await;
        // Frozen processes cannot write while the layer is copied: the copy is consistent.
        lifecycle::save_frozen(
            &self.inner.host,
            guard.spec(),
            guard.freezer(),
            &guard.upper(),
        )
        .await
    }

    async fn set_egress_allowlist(
        &self,
        id: SandboxId,
        allowlist: Vec<String>,
    ) -> Result<(), RuntimeError> {
        let sandbox = self.sandbox(id)?;
        let mut guard = sandbox.lock().await;
        guard.set_egress_allowlist(&self.inner, allowlist)
    }

    async fn delete_checkpoint(&self, checkpoint: CheckpointId) -> Result<bool, RuntimeError> {
        self.inner.host.store.delete(checkpoint).await
    }

    async fn restore(&self, id: SandboxId, checkpoint: CheckpointId) -> Result<(), RuntimeError> {
        let sandbox = self.sandbox(id)?;
        let mut guard = sandbox.lock().await;
        lifecycle::check_template(&self.inner.host, checkpoint, &guard.spec().template)?;
        guard
            .restore(&self.inner, &self.inner.host.store.layer(checkpoint))
            .await
    }

    async fn fork(
        &self,
        checkpoint: CheckpointId,
        mut spec: SandboxSpec,
    ) -> Result<SandboxInfo, RuntimeError> {
        spec.boot_from = BootLayer::Checkpoint(checkpoint);
        self.create(spec).await
    }

    async fn register_snapshot(
        &self,
        name: &str,
        checkpoint: CheckpointId,
    ) -> Result<(), RuntimeError> {
        self.inner.host.store.register_snapshot(name, checkpoint)
    }
}
