//! The `netns` runtime (Linux, root): each sandbox is a network namespace joined to the host by
//! a veth pair, its own pid/mount/uts/ipc namespaces, an overlay root over a read-only system
//! tree whose writable layer lives on a size-limited disk of its own (ADR 0207), cgroup limits,
//! and per-sandbox nftables rules that let traffic out only through the worker proxy and
//! resolver. Creation is all-or-nothing: any failure tears down what was built. A create that
//! fits the worker's warm pool claims a pre-built sandbox instead (`warm_pool`, ADR 0208).
//! This module must never start a sandbox process before its egress rules are in place, and
//! never let a sandbox see the worker's data dir or another sandbox.

pub mod boot;
pub mod disk;
pub mod rootfs;

// The host-side pieces moved to `crate::host` (shared with the microVM runtime); these paths
// stay for existing callers.
pub use crate::host::{cgroup, firewall, network, reaper};

mod sandbox;
mod warm;
mod warm_pool;

pub(crate) use sandbox::sandbox_hostname;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use osb_proto::{CheckpointId, SandboxId};

use crate::checkpoint::CheckpointMeta;
use crate::config::{NetnsConfig, MAX_WARM_POOL};
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
use sandbox::{step_span, Sandbox};
use warm_pool::WarmPool;

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

/// The steps of a claim from the warm pool, in order (for fault injection in tests of the
/// undo path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStep {
    /// Hostname, hosts and CA files rewritten in the base layer.
    Files,
    /// The pooled directory renamed to the sandbox id's.
    Directory,
    /// The pool's cgroup renamed to the id's (v1) or the id's made and pid 1 moved into it
    /// (v2), and the spec's limits written.
    Limits,
    /// Pid 1 named (UTS hostname).
    Hostname,
    /// The sandbox's nftables rules replace the pooled ones (when made for other ports).
    Firewall,
    /// Resolver policy registration.
    DnsPolicy,
    /// The link's host side up.
    Link,
}

impl ClaimStep {
    /// Every step, in order.
    pub const ALL: [ClaimStep; 7] = [
        ClaimStep::Files,
        ClaimStep::Directory,
        ClaimStep::Limits,
        ClaimStep::Hostname,
        ClaimStep::Firewall,
        ClaimStep::DnsPolicy,
        ClaimStep::Link,
    ];
}

pub(crate) struct Inner {
    pub(crate) host: HostContext,
    pub(crate) disks: disk::DiskTemplates,
    pub(crate) sandboxes: SandboxTable<Sandbox>,
    pub(crate) templates: RwLock<HashMap<String, Template>>,
    pub(crate) injected_fault: Mutex<Option<CreateStep>>,
    pub(crate) injected_claim_fault: Mutex<Option<ClaimStep>>,
    pub(crate) pool: WarmPool,
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
        if config.warm_pool > MAX_WARM_POOL {
            return Err(RuntimeError::Setup {
                step: "reading the runtime configuration",
                detail: format!(
                    "a warm pool of {} sandboxes is too large: use 0 to {MAX_WARM_POOL}",
                    config.warm_pool
                ),
            });
        }
        let (warm_pool, warm_pool_proxy) = (config.warm_pool, config.warm_pool_proxy);
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
            warm_pool,
            "netns sandbox runtime ready"
        );
        let inner = Arc::new(Inner {
            host,
            disks,
            sandboxes: SandboxTable::default(),
            templates: RwLock::new(templates),
            injected_fault: Mutex::new(None),
            injected_claim_fault: Mutex::new(None),
            pool: WarmPool::new(warm_pool, warm_pool_proxy),
        });
        inner.pool.start(Arc::downgrade(&inner));
        Ok(Self { inner })
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

    /// Makes every following claim from the warm pool fail right after `step` (None: never).
    /// For tests that prove a failed personalise leaves nothing; never set in production.
    pub fn inject_claim_fault(&self, step: Option<ClaimStep>) {
        if let Ok(mut fault) = self.inner.injected_claim_fault.lock() {
            *fault = step;
        }
    }

    /// Pooled sandboxes ready to be claimed now.
    pub fn warm_pool_ready(&self) -> usize {
        self.inner.pool.ready()
    }

    /// Creates served from the warm pool since the runtime started.
    pub fn warm_pool_claims(&self) -> u64 {
        self.inner.pool.claims()
    }

    /// Waits until the warm pool holds its configured number of sandboxes; false when it did
    /// not within `timeout` (for tests and benchmarks that need a full pool).
    pub async fn wait_for_warm_pool(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.inner.pool.ready() < self.inner.pool.target() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Creates a sandbox the cold way even when the warm pool could serve it (benchmarks and
    /// tests compare both paths on one runtime).
    pub async fn create_cold(&self, spec: SandboxSpec) -> Result<SandboxInfo, RuntimeError> {
        let id = spec.id;
        if self.sandbox(id).is_ok() {
            return Err(RuntimeError::AlreadyExists(id));
        }
        let sandbox = Sandbox::create(&self.inner, spec).await?;
        self.register(id, sandbox)
    }

    /// Stops refilling the warm pool and removes its sandboxes (worker shutdown; also part of
    /// [`NetnsRuntime::shutdown`]). Creates afterwards take the cold path.
    pub async fn drain_warm_pool(&self) {
        self.inner.pool.drain(&self.inner).await;
    }

    fn register(&self, id: SandboxId, sandbox: Sandbox) -> Result<SandboxInfo, RuntimeError> {
        let info = sandbox.info();
        self.inner.sandboxes.insert(id, sandbox)?;
        Ok(info)
    }

    /// A claim from the warm pool when `spec` fits and one is ready; None: take the cold path.
    /// A failed personalise removes the claimed sandbox and also answers None (ADR 0208: a
    /// pooled sandbox that went bad while waiting must not fail the user's create).
    async fn try_claim(&self, spec: &SandboxSpec) -> Result<Option<Sandbox>, RuntimeError> {
        if self.inner.pool.target() == 0 || !warm_pool::fits(spec, self.inner.disks.default_mb()) {
            return Ok(None);
        }
        spec.require_runtime(crate::spec::RuntimeKind::Netns)?;
        let allowlist = spec.validate()?;
        let Some(pooled) = step_span("claim", "take").in_scope(|| self.inner.pool.take()) else {
            return Ok(None);
        };
        match pooled.claim(&self.inner, spec.clone(), allowlist).await {
            Ok(sandbox) => {
                self.inner.pool.record_claim(spec.proxy);
                Ok(Some(sandbox))
            }
            Err(RuntimeError::AlreadyExists(id)) => Err(RuntimeError::AlreadyExists(id)),
            Err(error) => {
                tracing::warn!(sandbox_id = %spec.id, error = %error, "claim from the warm pool failed; creating the sandbox cold");
                Ok(None)
            }
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

    /// Drains the warm pool and destroys every sandbox of this runtime (worker shutdown).
    pub async fn shutdown(&self) -> Result<(), RuntimeError> {
        self.drain_warm_pool().await;
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

    pub(crate) fn fail_if_claim_injected(&self, step: ClaimStep) -> Result<(), RuntimeError> {
        let injected = self
            .injected_claim_fault
            .lock()
            .ok()
            .and_then(|fault| *fault);
        if injected == Some(step) {
            return Err(RuntimeError::Setup {
                step: "claiming a pooled sandbox",
                detail: format!("fault injected after claim step {step:?}"),
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
        let sandbox = match self.try_claim(&spec).await? {
            Some(sandbox) => sandbox,
            None => Sandbox::create(&self.inner, spec).await?,
        };
        self.register(id, sandbox)
    }

    async fn drain_warm_pool(&self) {
        NetnsRuntime::drain_warm_pool(self).await;
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
