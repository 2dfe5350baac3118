//! One netns sandbox: its spec, link, directories, disk, cgroup and pid 1, with the
//! all-or-nothing create and the idempotent teardown. Teardown is the undo of create: it removes
//! whatever of the sandbox exists, tolerating parts that were never made, so a failed create, a
//! destroy and a second destroy all end in the same clean state. This module must never boot
//! pid 1 before the egress rules are installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;
use tracing::Instrument;

use crate::checkpoint::copy_tree;
use crate::env::overlay_exec_env;
use crate::error::RuntimeError;
use crate::host::cgroup::{self, CgroupPlan, Limits};
use crate::host::network::LinkShape;
use crate::host::{lifecycle, link};
use crate::netns::boot::{self, BootPlan, EnterPlan, InitProcess};
use crate::netns::disk;
use crate::netns::rootfs::{self, BaseInputs, Template};
use crate::netns::{CreateStep, Inner};
use crate::pool::SlotAddresses;
use crate::runtime::{ExecRequest, Isolation, SandboxInfo, SandboxState};
use crate::spec::{validate_env_name, SandboxSpec};
use crate::system::kill_process;

pub(crate) struct Sandbox {
    pub(super) spec: SandboxSpec,
    pub(super) template: Template,
    pub(super) addresses: SlotAddresses,
    pub(super) dir: PathBuf,
    pub(super) disk_mb: u32,
    pub(super) cgroup: CgroupPlan,
    pub(super) env: BTreeMap<String, String>,
    pub(super) init: Option<InitProcess>,
}

/// A span for one step of a create on `path` (`cold` or `claim`): `RUST_LOG=osb_vm=debug` and
/// the warm-pool benchmark show where each millisecond of a create goes.
pub(crate) fn step_span(path: &'static str, step: &'static str) -> tracing::Span {
    tracing::debug_span!("create_step", path, step)
}

impl Sandbox {
    pub(crate) async fn create(inner: &Inner, spec: SandboxSpec) -> Result<Self, RuntimeError> {
        spec.require_runtime(crate::spec::RuntimeKind::Netns)?;
        let allowlist = spec.validate()?;
        let disk_mb = spec.disk_mb_within(inner.disks.default_mb())?;
        let template = inner
            .templates
            .read()
            .ok()
            .and_then(|templates| templates.get(&spec.template).cloned())
            .ok_or_else(|| RuntimeError::UnknownTemplate(spec.template.clone()))?;
        let boot_layer = lifecycle::boot_checkpoint(&inner.host, &spec)?;
        let (dir, addresses) = lifecycle::claim(&inner.host, spec.id)?;
        let cgroup = cgroup::plan(
            inner.host.cgroup_version,
            Path::new(cgroup::CGROUP_ROOT),
            inner.host.naming.prefix(),
            &spec.id.to_string(),
            Limits {
                cpu_count: spec.cpu_count,
                memory_mb: spec.memory_mb,
                pids_max: inner.host.config.pids_max,
            },
        );
        let env = lifecycle::sandbox_env(&spec, &addresses);
        let mut sandbox = Sandbox {
            spec,
            template,
            addresses,
            dir,
            disk_mb,
            cgroup,
            env,
            init: None,
        };
        let built = sandbox.build(inner, boot_layer, allowlist).await;
        match built {
            Ok(()) => {
                tracing::info!(sandbox_id = %sandbox.spec.id, address = %addresses.sandbox, "sandbox created");
                Ok(sandbox)
            }
            Err(error) => {
                tracing::warn!(sandbox_id = %sandbox.spec.id, error = %error, "sandbox create failed; undoing");
                if let Err(undo_error) = sandbox.teardown(inner).await {
                    tracing::error!(sandbox_id = %sandbox.spec.id, error = %undo_error, "undo after failed create was incomplete; the reaper will finish it");
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
        let hostname = self.hostname();
        step_span("cold", "files").in_scope(|| self.write_files(inner, &hostname))?;
        inner
            .disks
            .attach(&self.dir, self.disk_mb)
            .instrument(step_span("cold", "disk"))
            .await?;
        inner.fail_if_injected(CreateStep::Disk)?;
        if let Some(checkpoint) = boot_layer {
            self.fill_upper(&inner.host.store.layer(checkpoint))
                .instrument(step_span("cold", "boot_layer"))
                .await?;
        }
        inner.fail_if_injected(CreateStep::FileTree)?;
        step_span("cold", "cgroup").in_scope(|| cgroup::create(&self.cgroup))?;
        inner.fail_if_injected(CreateStep::Cgroup)?;
        link::connect(&inner.host, &self.addresses, LinkShape::Address)
            .instrument(step_span("cold", "network"))
            .await?;
        inner.fail_if_injected(CreateStep::Network)?;
        link::install_firewall(&inner.host, &self.addresses, self.spec.proxy)
            .instrument(step_span("cold", "firewall"))
            .await?;
        inner.fail_if_injected(CreateStep::Firewall)?;
        step_span("cold", "dns").in_scope(|| {
            link::register_dns(&inner.host, &self.addresses, self.spec.id, allowlist);
        });
        inner.fail_if_injected(CreateStep::DnsPolicy)?;
        let named = Some(hostname.as_str());
        self.boot_named(inner, named)
            .instrument(step_span("cold", "boot"))
            .await?;
        inner.fail_if_injected(CreateStep::Boot)
    }

    /// The base layer (naming the sandbox `hostname`) and the root mount point.
    pub(super) fn write_files(&self, inner: &Inner, hostname: &str) -> Result<(), RuntimeError> {
        rootfs::write_base(
            &self.base(),
            &self.template,
            &BaseInputs {
                hostname,
                address: self.addresses.sandbox,
                gateway: self.addresses.gateway,
                ca_pem: &self.spec.ca_pem,
                uid: inner.host.config.sandbox_uid,
                gid: inner.host.config.sandbox_gid,
            },
        )?;
        let root = self.root();
        std::fs::create_dir(&root)
            .map_err(|e| RuntimeError::io(format!("creating {}", root.display()), e))
    }

    async fn boot(&mut self, inner: &Inner) -> Result<(), RuntimeError> {
        let hostname = self.hostname();
        self.boot_named(inner, Some(&hostname)).await
    }

    /// Boots pid 1 named `hostname`; None: pid 1 waits for its name (a pooled sandbox).
    pub(super) async fn boot_named(
        &mut self,
        inner: &Inner,
        hostname: Option<&str>,
    ) -> Result<(), RuntimeError> {
        let netns = inner.host.naming.netns(self.addresses.slot);
        let lowerdir = self.template.lowerdir(&self.base());
        let (root, upper, work) = (self.root(), self.upper(), self.work());
        let init = boot::boot(
            &BootPlan {
                netns: &netns,
                cgroup_procs: &self.cgroup.procs,
                root: &root,
                lowerdir: &lowerdir,
                upper: &upper,
                work: &work,
                hostname,
                binds: self.template.binds(),
            },
            inner.host.config.boot_timeout,
        )
        .await?;
        self.init = Some(init);
        Ok(())
    }

    pub(crate) async fn start(&mut self, inner: &Inner) -> Result<(), RuntimeError> {
        if self.init.is_some() {
            return Ok(());
        }
        self.boot(inner).await
    }

    pub(crate) async fn stop(&mut self) {
        if let Some(mut init) = self.init.take() {
            // Killing pid 1 kills every process of the pid namespace.
            kill_process(init.pid1);
            let _ = init.unshare.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), init.unshare.wait()).await;
            tracing::info!(sandbox_id = %self.spec.id, "sandbox stopped");
        }
    }

    pub(crate) async fn restore(
        &mut self,
        inner: &Inner,
        layer: &Path,
    ) -> Result<(), RuntimeError> {
        self.stop().await;
        // Whatever was still exiting inside must be gone before the layer is swapped.
        for leaf in &self.cgroup.leaves {
            for pid in cgroup::pids_in(leaf) {
                kill_process(pid);
            }
        }
        for dir in [self.upper(), self.work()] {
            let target = dir.clone();
            let removed =
                tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&target)).await;
            if let Ok(Err(error)) = removed {
                if error.kind() != std::io::ErrorKind::NotFound {
                    return Err(RuntimeError::io(
                        format!("clearing {}", dir.display()),
                        error,
                    ));
                }
            }
            std::fs::create_dir(&dir)
                .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
        }
        self.fill_upper(layer).await?;
        self.boot(inner).await
    }

    /// Copies a checkpoint's layer onto the (empty) upper directory on the sandbox's disk.
    async fn fill_upper(&self, layer: &Path) -> Result<(), RuntimeError> {
        copy_tree(layer, &self.upper()).await.map_err(|error| {
            if disk::is_disk_full(&error) {
                RuntimeError::DiskFull {
                    what: "the checkpoint's writable layer",
                    disk_mb: self.disk_mb,
                }
            } else {
                error
            }
        })
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

    /// The command for an exec (built under the lock, run without it) and its timeout.
    pub(crate) fn exec_command(
        &self,
        inner: &Inner,
        request: &ExecRequest,
    ) -> Result<(Command, Duration), RuntimeError> {
        if request.cmd.is_empty() {
            return Err(RuntimeError::EmptyCommand);
        }
        for name in request.env.keys() {
            validate_env_name(name)?;
        }
        let Some(init) = &self.init else {
            return Err(RuntimeError::NotRunning(self.spec.id));
        };
        let env = overlay_exec_env(&self.env, &request.env);
        let command = boot::enter_command(&EnterPlan {
            pid1: init.pid1,
            cgroup_procs: &self.cgroup.procs,
            uid: inner.host.config.sandbox_uid,
            gid: inner.host.config.sandbox_gid,
            env: &env,
            cwd: request.cwd.as_deref(),
            cmd: &request.cmd,
        });
        Ok((command, request.timeout))
    }

    pub(crate) fn info(&self) -> SandboxInfo {
        SandboxInfo {
            sandbox_id: self.spec.id,
            address: self.addresses.sandbox,
            gateway: self.addresses.gateway,
            state: if self.init.is_some() {
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

    pub(crate) fn upper(&self) -> PathBuf {
        disk::upper(&self.dir)
    }

    pub(super) fn base(&self) -> PathBuf {
        self.dir.join("base")
    }

    fn work(&self) -> PathBuf {
        disk::work(&self.dir)
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub(super) fn hostname(&self) -> String {
        sandbox_hostname(self.spec.id)
    }
}

/// The hostname of a sandbox (every runtime names it the same way).
pub(crate) fn sandbox_hostname(id: osb_proto::SandboxId) -> String {
    let id = id.as_uuid().simple().to_string();
    format!("sbx-{}", &id[..12])
}
