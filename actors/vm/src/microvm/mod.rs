//! The `microvm` runtime (Linux, root, QEMU): each sandbox is a QEMU `microvm` guest with its
//! own kernel, booted from the guest image `scripts/build-guest.sh` builds, on a tap inside its
//! own network namespace. The link, nftables rules, resolver, cgroup and reaper are the netns
//! runtime's (`crate::host`), so every egress guarantee holds unchanged; commands run through
//! the guest agent over virtio-serial with the sandbox's composed environment (sealed tokens
//! only). Checkpoints are copies of the writable disk plus the same metadata (ADR 0206). This
//! module must never boot a VM before its egress rules are in place, and never let a guest
//! reach a host file other than its own disks.

pub mod accel;
pub mod agent;
pub mod config;
pub mod disks;
pub mod guest;
pub mod qemu;

mod vm;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use osb_proto::{CheckpointId, SandboxId};

use crate::checkpoint::CheckpointMeta;
use crate::error::RuntimeError;
use crate::events::EventSink;
use crate::host::table::{Entry, SandboxTable};
use crate::host::{lifecycle, reaper, HostContext};
use crate::runtime::{ExecOutput, ExecRequest, ExecStream, Isolation, Runtime, SandboxInfo};
use crate::spec::{BootLayer, SandboxSpec};
use crate::system::{is_root, tool_exists};

pub use config::{AccelChoice, MicroVmConfig};
pub use guest::GuestImage;
pub use qemu::Accel;
pub use reaper::ResourceCensus;
use vm::Vm;

/// Host tools the runtime needs besides QEMU (Debian: iproute2, nftables, util-linux,
/// e2fsprogs, coreutils).
pub const REQUIRED_TOOLS: [&str; 5] = ["ip", "nft", "nsenter", "mke2fs", "cp"];

/// The microVM runtime.
#[derive(Clone)]
pub struct MicroVmRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MicroVmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicroVmRuntime")
            .field("prefix", &self.inner.host.config.name_prefix)
            .field("pool", &self.inner.host.config.address_pool.to_string())
            .field("accel", &self.inner.accel.name())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) host: HostContext,
    pub(crate) config: MicroVmConfig,
    pub(crate) guest: GuestImage,
    pub(crate) accel: Accel,
    sandboxes: SandboxTable<Vm>,
}

/// Why the microVM runtime cannot run on this host with `config` (None: it can).
pub fn unavailable_reason(config: &MicroVmConfig) -> Option<String> {
    if !is_root() {
        return Some("the worker does not run as root".to_owned());
    }
    let qemu = config.qemu_binary.display().to_string();
    let qemu_found = if config.qemu_binary.is_absolute() {
        config.qemu_binary.is_file()
    } else {
        tool_exists(&qemu)
    };
    let mut missing: Vec<String> = REQUIRED_TOOLS
        .into_iter()
        .filter(|tool| !tool_exists(tool))
        .map(str::to_owned)
        .collect();
    if !qemu_found {
        missing.push(qemu);
    }
    if !missing.is_empty() {
        return Some(format!(
            "required host tools are missing: {} (install qemu-system-x86, iproute2, nftables, util-linux, e2fsprogs)",
            missing.join(", ")
        ));
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun is missing: the host cannot create tap devices".to_owned());
    }
    GuestImage::locate(&config.guest_dir)
        .err()
        .map(|error| error.to_string())
}

/// An unprivileged QEMU must reach its own directory under the data dir: every existing
/// ancestor needs search permission for others (the data dir's own entries stay private).
fn check_traversable(data_dir: &Path) -> Result<(), RuntimeError> {
    use std::os::unix::fs::PermissionsExt;
    for dir in data_dir.ancestors() {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        if meta.permissions().mode() & 0o001 == 0 {
            return Err(RuntimeError::Setup {
                step: "checking the microVM data dir",
                detail: format!(
                    "QEMU runs as an unprivileged uid and cannot pass through {} (mode {:o}): give the data dir a path whose directories are traversable (chmod o+x, e.g. under /var/lib), or run QEMU as root (qemu_uid_base = None)",
                    dir.display(),
                    meta.permissions().mode() & 0o7777
                ),
            });
        }
    }
    Ok(())
}

impl MicroVmRuntime {
    /// Checks the host and the guest image, reaps orphans of a previous run with the same
    /// prefix, picks the accelerator (probing KVM by booting, once per process) and starts the
    /// resolver.
    pub async fn new(
        config: MicroVmConfig,
        sink: Arc<dyn EventSink>,
    ) -> Result<Self, RuntimeError> {
        if let Some(reason) = unavailable_reason(&config) {
            return Err(RuntimeError::Setup {
                step: "starting the microVM runtime",
                detail: reason,
            });
        }
        let guest = GuestImage::locate(&config.guest_dir)?;
        let accel = accel::resolve(config.accel, &config.qemu_binary, &guest).await?;
        if config.qemu_uid_base.is_some() {
            guest.check_world_readable()?;
            check_traversable(&config.host.data_dir)?;
        }
        let host = HostContext::start(config.host.clone(), sink).await?;
        if config.qemu_uid_base.is_some() {
            // Each VM's directory belongs to its QEMU uid (mode 0700); the parent lets those
            // uids reach their own directory and list nothing.
            let sandboxes = config.host.data_dir.join("sandboxes");
            std::fs::set_permissions(
                &sandboxes,
                std::os::unix::fs::PermissionsExt::from_mode(0o711),
            )
            .map_err(|e| {
                RuntimeError::io(format!("setting the mode of {}", sandboxes.display()), e)
            })?;
        }
        tracing::info!(
            prefix = %config.host.name_prefix,
            pool = %config.host.address_pool,
            accel = accel.name(),
            kernel = %guest.kernel_release,
            "microVM sandbox runtime ready"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                host,
                config,
                guest,
                accel,
                sandboxes: SandboxTable::default(),
            }),
        })
    }

    /// The accelerator VMs run with.
    pub fn accel(&self) -> Accel {
        self.inner.accel
    }

    /// The resolver's bound address.
    pub fn resolver_addr(&self) -> std::net::SocketAddr {
        self.inner.host.resolver.local_addr()
    }

    /// Counts the host objects this worker owns.
    pub async fn census(&self) -> Result<ResourceCensus, RuntimeError> {
        reaper::census(&self.inner.host.owned()).await
    }

    /// Destroys every sandbox of this runtime (worker shutdown).
    pub async fn shutdown(&self) -> Result<(), RuntimeError> {
        for id in self.inner.sandboxes.ids() {
            self.destroy(id).await?;
        }
        reaper::reap(&self.inner.host.owned()).await.map(drop)
    }

    fn sandbox(&self, id: SandboxId) -> Result<Entry<Vm>, RuntimeError> {
        self.inner.sandboxes.get(id)
    }
}

#[async_trait]
impl Runtime for MicroVmRuntime {
    fn isolation(&self) -> Isolation {
        Isolation::Enforced
    }

    async fn create(&self, spec: SandboxSpec) -> Result<SandboxInfo, RuntimeError> {
        let id = spec.id;
        if self.sandbox(id).is_ok() {
            return Err(RuntimeError::AlreadyExists(id));
        }
        let mut vm = Vm::create(&self.inner, spec).await?;
        let info = vm.info();
        self.inner.sandboxes.insert(id, vm)?;
        Ok(info)
    }

    async fn exec(&self, id: SandboxId, request: ExecRequest) -> Result<ExecOutput, RuntimeError> {
        let stream = self.exec_streaming(id, request.clone()).await?;
        crate::exec::collect_bounded(stream, request.max_output_bytes).await
    }

    async fn exec_streaming(
        &self,
        id: SandboxId,
        request: ExecRequest,
    ) -> Result<ExecStream, RuntimeError> {
        let (agent, start) = self
            .sandbox(id)?
            .lock()
            .await
            .exec_start(&self.inner, &request)?;
        agent.exec(start, request.timeout).await
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
            Some(vm) => vm.lock().await.teardown(&self.inner).await,
            None => Ok(()),
        }
    }

    async fn checkpoint(&self, id: SandboxId) -> Result<CheckpointMeta, RuntimeError> {
        let sandbox = self.sandbox(id)?;
        let guard = sandbox.lock().await;
        // The guest flushes its page cache, then QEMU is frozen while its disk is copied: the
        // copy holds everything written before the checkpoint and nothing half-written after.
        guard.sync().await?;
        lifecycle::save_frozen(
            &self.inner.host,
            guard.spec(),
            guard.freezer(),
            &guard.disk_dir(),
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
