//! The steps every isolating runtime takes the same way around its own boot: checking where a
//! sandbox's layer starts from, claiming its directory and address slot, composing its
//! environment (sealed tokens only), saving a checkpoint while the sandbox is frozen, replacing
//! its allowlist, and releasing its host objects. The runtimes call these between their own
//! steps (a namespaced pid 1, or a VM). This module must never start a sandbox process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use osb_proto::{CheckpointId, SandboxId};

use crate::checkpoint::CheckpointMeta;
use crate::env::{compose_env, EnvContext};
use crate::error::RuntimeError;
use crate::host::cgroup::{self, Freezer};
use crate::host::{link, mounts, HostContext};
use crate::netns::rootfs::{CA_BUNDLE_PATH, CA_CERT_PATH, SANDBOX_USER, WORKSPACE};
use crate::pool::SlotAddresses;
use crate::spec::{BootLayer, SandboxSpec};

/// The checkpoint a spec boots from (None: a fresh layer), checked to exist and to belong to
/// the spec's template.
pub(crate) fn boot_checkpoint(
    host: &HostContext,
    spec: &SandboxSpec,
) -> Result<Option<CheckpointId>, RuntimeError> {
    let checkpoint = match &spec.boot_from {
        BootLayer::Fresh => return Ok(None),
        BootLayer::Checkpoint(checkpoint) => *checkpoint,
        BootLayer::Snapshot(name) => host.store.snapshot(name)?,
    };
    check_template(host, checkpoint, &spec.template)?;
    Ok(Some(checkpoint))
}

/// Refuses a checkpoint taken on another template than `template`.
pub(crate) fn check_template(
    host: &HostContext,
    checkpoint: CheckpointId,
    template: &str,
) -> Result<(), RuntimeError> {
    let meta = host.store.load(checkpoint)?;
    if meta.template != template {
        return Err(RuntimeError::TemplateMismatch {
            checkpoint,
            expected: meta.template,
            given: template.to_owned(),
        });
    }
    Ok(())
}

/// Creates the sandbox's private directory and claims an address slot (all or nothing).
pub(crate) fn claim(
    host: &HostContext,
    id: SandboxId,
) -> Result<(PathBuf, SlotAddresses), RuntimeError> {
    claim_named(host, id, &id.to_string())
}

/// The directory of sandbox `id` (claimed or cold-created).
pub(crate) fn sandbox_dir(host: &HostContext, id: SandboxId) -> PathBuf {
    host.config.data_dir.join("sandboxes").join(id.to_string())
}

/// [`claim`] with the directory named `name` (a pooled sandbox's `warm-…`).
pub(crate) fn claim_named(
    host: &HostContext,
    id: SandboxId,
    name: &str,
) -> Result<(PathBuf, SlotAddresses), RuntimeError> {
    let dir = host.config.data_dir.join("sandboxes").join(name);
    std::fs::create_dir(&dir).map_err(|error| match error.kind() {
        std::io::ErrorKind::AlreadyExists => RuntimeError::AlreadyExists(id),
        _ => RuntimeError::io(format!("creating {}", dir.display()), error),
    })?;
    match host.allocate_slot() {
        Ok(addresses) => Ok((dir, addresses)),
        Err(error) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(error)
        }
    }
}

/// The sandbox's environment: proxy variables toward its gateway, CA variables, sealed
/// tokens, then the user's envs.
pub(crate) fn sandbox_env(
    spec: &SandboxSpec,
    addresses: &SlotAddresses,
) -> BTreeMap<String, String> {
    compose_env(
        &EnvContext {
            proxy_url: format!("http://{}:{}", addresses.gateway, spec.proxy.explicit_port),
            ca_bundle_path: CA_BUNDLE_PATH.to_owned(),
            ca_cert_path: CA_CERT_PATH.to_owned(),
            home: WORKSPACE.to_owned(),
            user: SANDBOX_USER.to_owned(),
        },
        &spec.sealed_envs,
        &spec.user_envs,
    )
}

/// Copies `layer_dir` into a new checkpoint of `spec` while the sandbox's cgroup is frozen
/// (nothing writes during the copy: it is one point in time); the metadata returned carries
/// the checkpoint's size on disk.
pub(crate) async fn save_frozen(
    host: &HostContext,
    spec: &SandboxSpec,
    freezer: Option<&Freezer>,
    layer_dir: &Path,
) -> Result<CheckpointMeta, RuntimeError> {
    let mut meta = CheckpointMeta::describe(CheckpointId::new(), spec);
    if let Some(freezer) = freezer {
        cgroup::freeze(freezer).await?;
    }
    let saved = host.store.save(layer_dir, &meta).await;
    if let Some(freezer) = freezer {
        cgroup::thaw(freezer);
    }
    meta.size_bytes = saved?;
    Ok(meta)
}

/// `spec` with a new allowlist, validated and registered with the resolver.
pub(crate) fn replace_allowlist(
    host: &HostContext,
    addresses: &SlotAddresses,
    spec: &SandboxSpec,
    allowlist: Vec<String>,
) -> Result<SandboxSpec, RuntimeError> {
    let mut updated = spec.clone();
    updated.egress_allowlist = allowlist;
    let validated = updated.validate()?;
    link::register_dns(host, addresses, spec.id, validated);
    Ok(updated)
}

/// Removes the sandbox's cgroups (and processes), link, mounts (its disk, ADR 0207), directory
/// and slot; each may already be gone. The disk is unmounted only once nothing of the sandbox
/// runs, and its loop device is released before the image is deleted.
pub(crate) async fn release(
    host: &HostContext,
    id: SandboxId,
    addresses: &SlotAddresses,
    cgroup_leaves: &[PathBuf],
    dir: &Path,
) -> Result<(), RuntimeError> {
    let cgroups = cgroup::remove(cgroup_leaves).await;
    link::remove(host, addresses).await;
    host.release_slot(addresses.slot);
    // Never delete through a mount: a disk that would not come down keeps its directory (the
    // reaper retries), and the error says why.
    mounts::take_down_under(dir).await?;
    let target = dir.to_path_buf();
    let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&target)).await;
    cgroups?;
    match removed {
        Ok(Err(error)) if error.kind() != std::io::ErrorKind::NotFound => Err(RuntimeError::io(
            format!("removing {}", dir.display()),
            error,
        )),
        _ => {
            tracing::info!(sandbox_id = %id, "sandbox destroyed");
            Ok(())
        }
    }
}
