//! One microVM sandbox: its spec, link, disks, cgroup and the running QEMU with its agent
//! channel, with the all-or-nothing create and the idempotent teardown (the undo of create: it
//! removes whatever exists, so a failed create, a destroy and a second destroy end the same).
//! This module must never start QEMU before the sandbox's egress rules are installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use osb_guest_agent::protocol::ExecStart;

use crate::checkpoint::copy_tree;
use crate::env::overlay_exec_env;
use crate::error::RuntimeError;
use crate::host::cgroup::{self, CgroupPlan, Limits};
use crate::host::network::LinkShape;
use crate::host::{lifecycle, link};
use crate::microvm::agent::AgentClient;
use crate::microvm::disks;
use crate::microvm::qemu::{self, Accel, QemuProcess, RunAs, VmPlan};
use crate::microvm::Inner;
use crate::netns::rootfs::{BaseInputs, WORKSPACE};
use crate::netns::sandbox_hostname;
use crate::pool::SlotAddresses;
use crate::runtime::{ExecRequest, Isolation, SandboxInfo, SandboxState};
use crate::spec::{validate_env_name, SandboxSpec, HOST_SYSTEM_TEMPLATE};

/// The tap's name inside the sandbox's own namespace (namespaces keep names apart).
pub const TAP_NAME: &str = "tap0";
/// Memory the cgroup allows QEMU beyond the guest's RAM (device model, TCG translation cache).
pub const QEMU_OVERHEAD_MB: u32 = 192;
/// How long a guest `sync` may take before a checkpoint gives up on it.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// How long stop waits for the guest to flush before it kills QEMU anyway.
const STOP_SYNC_TIMEOUT: Duration = Duration::from_secs(5);

struct Running {
    qemu: QemuProcess,
    agent: Arc<AgentClient>,
}

pub(crate) struct Vm {
    spec: SandboxSpec,
    addresses: SlotAddresses,
    dir: PathBuf,
    cgroup: CgroupPlan,
    env: BTreeMap<String, String>,
    /// The uid (= gid) QEMU runs as; None: root.
    qemu_uid: Option<u32>,
    running: Option<Running>,
}

impl Vm {
    pub(crate) async fn create(inner: &Inner, spec: SandboxSpec) -> Result<Self, RuntimeError> {
        spec.require_runtime(crate::spec::RuntimeKind::Microvm)?;
        let allowlist = spec.validate()?;
        if spec.template != HOST_SYSTEM_TEMPLATE {
            return Err(RuntimeError::UnknownTemplate(spec.template.clone()));
        }
        let boot_layer = lifecycle::boot_checkpoint(&inner.host, &spec)?;
        // Refused before anything exists (`build` reads the size again).
        spec.disk_mb_within(inner.config.disk_mb)?;
        let (dir, addresses) = lifecycle::claim(&inner.host, spec.id)?;
        let cgroup = cgroup::plan(
            inner.host.cgroup_version,
            Path::new(cgroup::CGROUP_ROOT),
            inner.host.naming.prefix(),
            &spec.id.to_string(),
            Limits {
                cpu_count: spec.cpu_count,
                memory_mb: spec.memory_mb.saturating_add(QEMU_OVERHEAD_MB),
                // QEMU's own threads; the guest's processes are the guest kernel's business.
                pids_max: 256,
            },
        );
        let env = lifecycle::sandbox_env(&spec, &addresses);
        let qemu_uid = inner
            .config
            .qemu_uid_base
            .map(|base| base.saturating_add(addresses.slot));
        let mut vm = Vm {
            spec,
            addresses,
            dir,
            cgroup,
            env,
            qemu_uid,
            running: None,
        };
        match vm.build(inner, boot_layer, allowlist).await {
            Ok(()) => {
                tracing::info!(sandbox_id = %vm.spec.id, address = %addresses.sandbox, "microVM sandbox created");
                Ok(vm)
            }
            Err(error) => {
                tracing::warn!(sandbox_id = %vm.spec.id, error = %error, "microVM create failed; undoing");
                if let Err(undo_error) = vm.teardown(inner).await {
                    tracing::error!(sandbox_id = %vm.spec.id, error = %undo_error, "undo after failed create was incomplete; the reaper will finish it");
                }
                Err(error)
            }
        }
    }

    async fn build(
        &mut self,
        inner: &Inner,
        boot_layer: Option<osb_proto::CheckpointId>,
        allowlist: crate::spec::ValidatedAllowlist,
    ) -> Result<(), RuntimeError> {
        // The guest's writable disk is a fixed-size image: its size is the guest's quota.
        let disk_mb = self.spec.disk_mb_within(inner.config.disk_mb)?;
        let hostname = sandbox_hostname(self.spec.id);
        disks::write_base_disk(
            &self.dir.join("base"),
            &self.base_disk(),
            &BaseInputs {
                hostname: &hostname,
                address: self.addresses.sandbox,
                gateway: self.addresses.gateway,
                ca_pem: &self.spec.ca_pem,
                uid: inner.host.config.sandbox_uid,
                gid: inner.host.config.sandbox_gid,
            },
        )
        .await?;
        let disk_dir = self.disk_dir();
        std::fs::create_dir(&disk_dir)
            .map_err(|e| RuntimeError::io(format!("creating {}", disk_dir.display()), e))?;
        match boot_layer {
            Some(checkpoint) => copy_tree(&inner.host.store.layer(checkpoint), &disk_dir).await?,
            None => disks::create_rw_disk(&self.rw_disk(), disk_mb).await?,
        }
        self.hand_to_qemu()?;
        cgroup::create(&self.cgroup)?;
        link::connect(
            &inner.host,
            &self.addresses,
            LinkShape::BridgeToTap {
                tap: TAP_NAME,
                owner: self.qemu_uid,
            },
        )
        .await?;
        link::install_firewall(&inner.host, &self.addresses, self.spec.proxy).await?;
        link::register_dns(&inner.host, &self.addresses, self.spec.id, allowlist);
        self.boot(inner).await
    }

    /// Starts QEMU and waits for the agent's greeting; a VM that dies or stays silent is killed.
    async fn boot(&mut self, inner: &Inner) -> Result<(), RuntimeError> {
        let socket = self.agent_socket();
        let _ = std::fs::remove_file(&socket);
        let name = format!("{}-s{}", inner.host.naming.prefix(), self.addresses.slot);
        let mac = qemu::mac_for_slot(self.addresses.slot);
        let (base_disk, rw_disk, pid_file) = (self.base_disk(), self.rw_disk(), self.pid_file());
        let args = qemu::vm_args(&VmPlan {
            accel: inner.accel,
            guest: &inner.guest,
            name: &name,
            base_disk: &base_disk,
            rw_disk: &rw_disk,
            agent_socket: &socket,
            pid_file: &pid_file,
            tap: TAP_NAME,
            mac: &mac,
            cpu_count: self.spec.cpu_count,
            memory_mb: self.spec.memory_mb,
        });
        let run_as = self.qemu_uid.map(|uid| RunAs {
            uid,
            groups: match inner.accel {
                Accel::Kvm => kvm_group().into_iter().collect(),
                Accel::Tcg { .. } => Vec::new(),
            },
        });
        let mut qemu = qemu::spawn(
            &inner.config.qemu_binary,
            &args,
            Some(&inner.host.naming.netns(self.addresses.slot)),
            &self.cgroup.procs,
            run_as.as_ref(),
        )?;
        let timeout = inner.host.config.boot_timeout;
        let connected = tokio::select! {
            agent = AgentClient::connect(&socket, timeout) => agent,
            status = qemu.child.wait() => Err(RuntimeError::Setup {
                step: "booting the microVM",
                detail: format!("QEMU exited ({}) before the guest was ready", status.map(|s| s.to_string()).unwrap_or_default()),
            }),
        };
        match connected {
            Ok(agent) => {
                self.running = Some(Running {
                    qemu,
                    agent: Arc::new(agent),
                });
                Ok(())
            }
            Err(error) => {
                let _ = qemu.child.start_kill();
                let _ = qemu.child.wait().await;
                // Give the console drain a moment to take QEMU's last words.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let console = qemu.console.text();
                let tail: String = console
                    .chars()
                    .rev()
                    .take(1500)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                Err(RuntimeError::Setup {
                    step: "booting the microVM",
                    detail: format!("{error}; console: {tail}"),
                })
            }
        }
    }

    pub(crate) async fn start(&mut self, inner: &Inner) -> Result<(), RuntimeError> {
        if self.is_running() {
            return Ok(());
        }
        self.stop().await;
        self.boot(inner).await
    }

    /// Flushes the guest's disks (best effort) and stops QEMU.
    pub(crate) async fn stop(&mut self) {
        if let Some(mut running) = self.running.take() {
            if running.agent.is_alive() {
                if let Err(error) = running.agent.sync(STOP_SYNC_TIMEOUT).await {
                    tracing::warn!(sandbox_id = %self.spec.id, error = %error, "guest sync before stop failed");
                }
            }
            let _ = running.qemu.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), running.qemu.child.wait()).await;
            tracing::info!(sandbox_id = %self.spec.id, "microVM stopped");
        }
        // Whatever else is in the cgroup (nothing, normally) goes too.
        for leaf in &self.cgroup.leaves {
            for pid in cgroup::pids_in(leaf) {
                crate::system::kill_process(pid);
            }
        }
        let _ = std::fs::remove_file(self.agent_socket());
        let _ = std::fs::remove_file(self.pid_file());
    }

    /// Whether QEMU runs and the agent channel is open.
    pub(crate) fn is_running(&mut self) -> bool {
        match &mut self.running {
            Some(running) => {
                matches!(running.qemu.child.try_wait(), Ok(None)) && running.agent.is_alive()
            }
            None => false,
        }
    }

    /// Replaces the writable disk with a checkpoint's and boots from it.
    pub(crate) async fn restore(
        &mut self,
        inner: &Inner,
        layer: &Path,
    ) -> Result<(), RuntimeError> {
        self.stop().await;
        let disk_dir = self.disk_dir();
        let target = disk_dir.clone();
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&target)).await;
        if let Ok(Err(error)) = removed {
            if error.kind() != std::io::ErrorKind::NotFound {
                return Err(RuntimeError::io(
                    format!("clearing {}", disk_dir.display()),
                    error,
                ));
            }
        }
        std::fs::create_dir(&disk_dir)
            .map_err(|e| RuntimeError::io(format!("creating {}", disk_dir.display()), e))?;
        copy_tree(layer, &disk_dir).await?;
        self.hand_to_qemu()?;
        self.boot(inner).await
    }

    /// Gives QEMU's uid the sandbox directory and its disks (nothing else of the worker's).
    fn hand_to_qemu(&self) -> Result<(), RuntimeError> {
        let Some(uid) = self.qemu_uid else {
            return Ok(());
        };
        let owner = Some(nix::unistd::Uid::from_raw(uid));
        let group = Some(nix::unistd::Gid::from_raw(uid));
        for path in [
            self.dir.clone(),
            self.base_disk(),
            self.disk_dir(),
            self.rw_disk(),
        ] {
            nix::unistd::chown(&path, owner, group).map_err(|e| {
                RuntimeError::io(
                    format!("handing {} to QEMU's uid", path.display()),
                    e.into(),
                )
            })?;
        }
        std::fs::set_permissions(
            &self.dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(|e| RuntimeError::io(format!("setting the mode of {}", self.dir.display()), e))
    }

    /// Removes everything of the sandbox that exists; safe to call repeatedly.
    pub(crate) async fn teardown(&mut self, inner: &Inner) -> Result<(), RuntimeError> {
        self.stop().await;
        lifecycle::release(
            &inner.host,
            self.spec.id,
            &self.addresses,
            &self.cgroup.leaves,
            &self.dir,
        )
        .await
    }

    /// The agent and the request to send it (built under the lock, run without it).
    pub(crate) fn exec_start(
        &mut self,
        inner: &Inner,
        request: &ExecRequest,
    ) -> Result<(Arc<AgentClient>, ExecStart), RuntimeError> {
        if request.cmd.is_empty() {
            return Err(RuntimeError::EmptyCommand);
        }
        for name in request.env.keys() {
            validate_env_name(name)?;
        }
        if !self.is_running() {
            return Err(RuntimeError::NotRunning(self.spec.id));
        }
        let agent = self
            .running
            .as_ref()
            .map(|running| Arc::clone(&running.agent))
            .ok_or(RuntimeError::NotRunning(self.spec.id))?;
        let env = overlay_exec_env(&self.env, &request.env);
        let start = ExecStart {
            cmd: request.cmd.clone(),
            env: env.into_iter().collect(),
            cwd: request.cwd.clone().unwrap_or_else(|| WORKSPACE.to_owned()),
            uid: inner.host.config.sandbox_uid,
            gid: inner.host.config.sandbox_gid,
            timeout_ms: u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        Ok((agent, start))
    }

    /// Flushes the guest's page cache to the writable disk (a no-op when stopped).
    pub(crate) async fn sync(&self) -> Result<(), RuntimeError> {
        match &self.running {
            Some(running) if running.agent.is_alive() => running.agent.sync(SYNC_TIMEOUT).await,
            _ => Ok(()),
        }
    }

    pub(crate) fn info(&mut self) -> SandboxInfo {
        SandboxInfo {
            sandbox_id: self.spec.id,
            address: self.addresses.sandbox,
            gateway: self.addresses.gateway,
            state: if self.is_running() {
                SandboxState::Running
            } else {
                SandboxState::Stopped
            },
            isolation: Isolation::Enforced,
            warning: None,
        }
    }

    /// Replaces the allowlist: the resolver answers only the new names from now on.
    pub(crate) fn set_egress_allowlist(
        &mut self,
        inner: &Inner,
        allowlist: Vec<String>,
    ) -> Result<(), RuntimeError> {
        self.spec =
            lifecycle::replace_allowlist(&inner.host, &self.addresses, &self.spec, allowlist)?;
        Ok(())
    }

    pub(crate) fn spec(&self) -> &SandboxSpec {
        &self.spec
    }

    pub(crate) fn freezer(&self) -> Option<&cgroup::Freezer> {
        self.cgroup.freezer.as_ref()
    }

    /// The directory holding the writable disk (what a checkpoint copies).
    pub(crate) fn disk_dir(&self) -> PathBuf {
        self.dir.join("disk")
    }

    fn rw_disk(&self) -> PathBuf {
        self.disk_dir().join("rw.img")
    }

    fn base_disk(&self) -> PathBuf {
        self.dir.join("base.img")
    }

    fn agent_socket(&self) -> PathBuf {
        self.dir.join("agent.sock")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("qemu.pid")
    }
}

/// The group owning `/dev/kvm` (QEMU needs it to use KVM as an unprivileged uid).
fn kvm_group() -> Option<u32> {
    std::fs::metadata("/dev/kvm")
        .ok()
        .map(|meta| std::os::unix::fs::MetadataExt::gid(&meta))
}
