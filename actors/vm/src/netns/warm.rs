//! One warm-pool sandbox: built ahead of any request with everything that does not depend on a
//! spec (directory and base files, disk, cgroup, netns and veth, pid 1 booted and waiting for
//! its name), its veth's host side down, then claimed by a create and personalised: its
//! directory and cgroup take the sandbox's id, the base layer and UTS name take its hostname and
//! CA, its egress rules become the spec's (one nftables transaction, skipped when the rules
//! built ahead for the worker's proxy ports already are), the resolver learns its allowlist, and
//! only then its link comes up (ADR 0208). A failed personalise tears the sandbox down
//! completely.
//!
//! This module must never bring a pooled sandbox's link up before its claim has installed its
//! rules and resolver policy, never run anything in it but pid 1, and never give a pooled
//! sandbox a secret, a sealed token or a spec's environment.

use std::path::{Path, PathBuf};

use osb_proto::SandboxId;
use tracing::Instrument;

use crate::error::RuntimeError;
use crate::host::cgroup::{self, CgroupVersion, Limits};
use crate::host::network::LinkShape;
use crate::host::reaper::POOLED_DIR_PREFIX;
use crate::host::{lifecycle, link};
use crate::netns::rootfs;
use crate::netns::sandbox::{step_span, Sandbox};
use crate::netns::{ClaimStep, Inner};
use crate::spec::{ProxyEndpoints, SandboxSpec, ValidatedAllowlist, HOST_SYSTEM_TEMPLATE};

/// Memory limit of a pooled sandbox until its claim sets the spec's (pid 1 is one `sh`).
const POOLED_MEMORY_MB: u32 = 64;
/// Hostname in a pooled sandbox's base layer until its claim writes the real one.
const POOLED_HOSTNAME: &str = "sbx-pooled";

/// A pooled sandbox: built, booted, link down, unnamed.
pub(crate) struct Pooled {
    sandbox: Sandbox,
    /// The proxy ports its rules were built for (None: the closed rules, admitting nothing).
    rules_for: Option<ProxyEndpoints>,
}

impl Pooled {
    /// Builds one pooled sandbox, its rules made for `proxy` when given (else closed); a
    /// failure removes whatever was made.
    pub(crate) async fn build(
        inner: &Inner,
        proxy: Option<ProxyEndpoints>,
    ) -> Result<Self, RuntimeError> {
        // A placeholder spec: no envs, no tokens, no egress, no CA; the claim replaces it.
        let placeholder = SandboxSpec::new(
            SandboxId::new(),
            ProxyEndpoints {
                transparent_port: 0,
                explicit_port: 0,
            },
            "",
        );
        let name = format!("{POOLED_DIR_PREFIX}{}", placeholder.id);
        let template = inner
            .templates
            .read()
            .ok()
            .and_then(|templates| templates.get(HOST_SYSTEM_TEMPLATE).cloned())
            .ok_or_else(|| RuntimeError::UnknownTemplate(HOST_SYSTEM_TEMPLATE.to_owned()))?;
        let (dir, addresses) = lifecycle::claim_named(&inner.host, placeholder.id, &name)?;
        let cgroup = cgroup::plan(
            inner.host.cgroup_version,
            Path::new(cgroup::CGROUP_ROOT),
            inner.host.naming.prefix(),
            &name,
            Limits {
                cpu_count: 1,
                memory_mb: POOLED_MEMORY_MB,
                pids_max: inner.host.config.pids_max,
            },
        );
        let mut sandbox = Sandbox {
            spec: placeholder,
            template,
            addresses,
            dir,
            disk_mb: inner.disks.default_mb(),
            cgroup,
            env: Default::default(),
            init: None,
        };
        match build_unclaimed(inner, &mut sandbox, proxy).await {
            Ok(()) => Ok(Self {
                sandbox,
                rules_for: proxy,
            }),
            Err(error) => {
                if let Err(undo) = sandbox.teardown(inner).await {
                    tracing::error!(error = %undo, "undo after a failed pool build was incomplete; the reaper will finish it");
                }
                Err(error)
            }
        }
    }

    /// Makes this pooled sandbox the sandbox of `spec` (already validated into `allowlist`).
    /// On failure everything of it is removed; it never goes back to the pool.
    pub(crate) async fn claim(
        self,
        inner: &Inner,
        spec: SandboxSpec,
        allowlist: ValidatedAllowlist,
    ) -> Result<Sandbox, RuntimeError> {
        let mut sandbox = self.sandbox;
        let old_leaves = sandbox.cgroup.leaves.clone();
        sandbox.env = lifecycle::sandbox_env(&spec, &sandbox.addresses);
        sandbox.spec = spec;
        let mut reserved_dir = None;
        let personalised = personalise(
            inner,
            &mut sandbox,
            (allowlist, self.rules_for),
            &old_leaves,
            &mut reserved_dir,
        )
        .await;
        match personalised {
            Ok(()) => {
                tracing::info!(sandbox_id = %sandbox.spec.id, address = %sandbox.addresses.sandbox, "sandbox claimed from the warm pool");
                Ok(sandbox)
            }
            Err(error) => {
                tracing::warn!(sandbox_id = %sandbox.spec.id, error = %error, "personalising a pooled sandbox failed; tearing it down");
                if let Err(undo) = sandbox.teardown(inner).await {
                    tracing::error!(error = %undo, "undo after a failed claim was incomplete; the reaper will finish it");
                }
                let _ = cgroup::remove(&old_leaves).await;
                if let Some(dir) = reserved_dir {
                    let _ = std::fs::remove_dir(dir);
                }
                Err(error)
            }
        }
    }

    /// Removes the pooled sandbox (pool drain).
    pub(crate) async fn teardown(mut self, inner: &Inner) -> Result<(), RuntimeError> {
        self.sandbox.teardown(inner).await
    }
}

/// Every spec-independent step, ending with pid 1 waiting for its name behind a downed link
/// (and rules for `proxy`, or closed ones that admit nothing).
async fn build_unclaimed(
    inner: &Inner,
    sandbox: &mut Sandbox,
    proxy: Option<ProxyEndpoints>,
) -> Result<(), RuntimeError> {
    sandbox.write_files(inner, POOLED_HOSTNAME)?;
    inner.disks.attach(&sandbox.dir, sandbox.disk_mb).await?;
    cgroup::create(&sandbox.cgroup)?;
    link::connect(&inner.host, &sandbox.addresses, LinkShape::Address).await?;
    match proxy {
        Some(proxy) => link::install_firewall(&inner.host, &sandbox.addresses, proxy).await?,
        None => link::install_closed_firewall(&inner.host, &sandbox.addresses).await?,
    }
    link::set_host_side_up(&inner.host, &sandbox.addresses, false)?;
    sandbox.boot_named(inner, None).await
}

/// The claim's steps, each in its span; `reserved_dir` is the id's directory while it is
/// reserved but not yet the sandbox's (so a failure removes it).
async fn personalise(
    inner: &Inner,
    sandbox: &mut Sandbox,
    (allowlist, rules_for): (ValidatedAllowlist, Option<ProxyEndpoints>),
    old_leaves: &[PathBuf],
    reserved_dir: &mut Option<PathBuf>,
) -> Result<(), RuntimeError> {
    let id = sandbox.spec.id;
    let hostname = sandbox.hostname();
    step_span("claim", "files").in_scope(|| {
        rootfs::write_identity(
            &sandbox.base(),
            &hostname,
            sandbox.addresses.sandbox,
            &sandbox.spec.ca_pem,
        )
    })?;
    inner.fail_if_claim_injected(ClaimStep::Files)?;
    step_span("claim", "directory").in_scope(|| take_directory(inner, sandbox, reserved_dir))?;
    inner.fail_if_claim_injected(ClaimStep::Directory)?;
    let limits = step_span("claim", "limits");
    limits.in_scope(|| {
        let plan = cgroup::plan(
            inner.host.cgroup_version,
            Path::new(cgroup::CGROUP_ROOT),
            inner.host.naming.prefix(),
            &id.to_string(),
            Limits {
                cpu_count: sandbox.spec.cpu_count,
                memory_mb: sandbox.spec.memory_mb,
                pids_max: inner.host.config.pids_max,
            },
        );
        // From here teardown removes the new leaves; the caller removes the old ones.
        sandbox.cgroup = plan;
        match inner.host.cgroup_version {
            CgroupVersion::V1 => {
                cgroup::rename_leaves(old_leaves, &sandbox.cgroup.leaves)?;
                cgroup::create(&sandbox.cgroup)
            }
            CgroupVersion::V2 => {
                cgroup::create(&sandbox.cgroup)?;
                cgroup::migrate(old_leaves, &sandbox.cgroup.procs)
            }
        }
    })?;
    cgroup::remove(old_leaves).instrument(limits).await?;
    inner.fail_if_claim_injected(ClaimStep::Limits)?;
    let naming = sandbox
        .init
        .as_mut()
        .and_then(|init| init.naming.take())
        .ok_or_else(|| RuntimeError::Setup {
            step: "naming the claimed sandbox (hostname)",
            detail: "the pooled pid 1 is gone or was already named".into(),
        })?;
    naming
        .name(&hostname, inner.host.config.boot_timeout)
        .instrument(step_span("claim", "hostname"))
        .await?;
    inner.fail_if_claim_injected(ClaimStep::Hostname)?;
    // Rules made ahead for other ports are replaced in one transaction (the link is still
    // down, and the chain keeps its drop policy throughout).
    if rules_for != Some(sandbox.spec.proxy) {
        link::install_firewall(&inner.host, &sandbox.addresses, sandbox.spec.proxy)
            .instrument(step_span("claim", "firewall"))
            .await?;
    }
    inner.fail_if_claim_injected(ClaimStep::Firewall)?;
    step_span("claim", "dns").in_scope(|| {
        link::register_dns(&inner.host, &sandbox.addresses, id, allowlist);
    });
    inner.fail_if_claim_injected(ClaimStep::DnsPolicy)?;
    step_span("claim", "link")
        .in_scope(|| link::set_host_side_up(&inner.host, &sandbox.addresses, true))?;
    inner.fail_if_claim_injected(ClaimStep::Link)
}

/// Renames the pooled directory to the id's (reserved first, so a concurrent create of the
/// same id fails with `AlreadyExists` on either path).
fn take_directory(
    inner: &Inner,
    sandbox: &mut Sandbox,
    reserved_dir: &mut Option<PathBuf>,
) -> Result<(), RuntimeError> {
    let id = sandbox.spec.id;
    let target = lifecycle::sandbox_dir(&inner.host, id);
    std::fs::create_dir(&target).map_err(|error| match error.kind() {
        std::io::ErrorKind::AlreadyExists => RuntimeError::AlreadyExists(id),
        _ => RuntimeError::io(format!("creating {}", target.display()), error),
    })?;
    *reserved_dir = Some(target.clone());
    // The disk mounted below moves with its directory (mounts hang on dentries, not paths).
    std::fs::rename(&sandbox.dir, &target).map_err(|error| {
        RuntimeError::io(
            format!("renaming {} to {}", sandbox.dir.display(), target.display()),
            error,
        )
    })?;
    *reserved_dir = None;
    sandbox.dir = target;
    Ok(())
}
