//! Checkpoints and golden snapshots on disk. A checkpoint is a copy of a sandbox's writable
//! layer plus `meta.json`: template, env names, which names are secrets with their token *ids*
//! (the 8-hex diagnostic id, not the token), allowlist and limits. It never holds secret values,
//! never a usable token and never a token→value map: values are re-resolved from the vault by
//! the caller. A golden snapshot is a name pointing at a checkpoint.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use osb_proto::{CheckpointId, SandboxId};
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::spec::SandboxSpec;
use crate::system::run_tool;

/// Format version of `meta.json`.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;

/// A secret as recorded in a checkpoint: its name and the short id of the token it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// The secret (and env-var) name.
    pub name: String,
    /// The first 8 hex characters of the sandbox's token: enough to correlate, useless to use.
    pub token_id: String,
}

/// The metadata of one checkpoint (`meta.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointMeta {
    /// Format version.
    pub version: u32,
    /// This checkpoint.
    #[serde(rename = "checkpointID")]
    pub checkpoint_id: CheckpointId,
    /// The sandbox it was taken from.
    #[serde(rename = "sandboxID")]
    pub sandbox_id: SandboxId,
    /// The template the layer sits on.
    pub template: String,
    /// Unix time in milliseconds.
    pub created_at_unix_ms: u64,
    /// Names of the plain user envs (values are not kept).
    pub env_names: Vec<String>,
    /// Secret names with token ids.
    pub secrets: Vec<SecretRef>,
    /// The egress allowlist.
    pub egress_allowlist: Vec<String>,
    /// CPU limit.
    pub cpu_count: u32,
    /// Memory limit in MiB.
    #[serde(rename = "memoryMB")]
    pub memory_mb: u32,
    /// Bytes the checkpoint takes on disk (layer and metadata), measured by `save` after it
    /// wrote them. Not part of `meta.json` (the file cannot hold its own size): 0 when loaded.
    #[serde(skip)]
    pub size_bytes: u64,
}

impl CheckpointMeta {
    /// Metadata describing `spec` now.
    pub fn describe(checkpoint_id: CheckpointId, spec: &SandboxSpec) -> Self {
        let created_at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            version: CHECKPOINT_FORMAT_VERSION,
            checkpoint_id,
            sandbox_id: spec.id,
            template: spec.template.clone(),
            created_at_unix_ms,
            env_names: spec.user_envs.keys().cloned().collect(),
            secrets: spec
                .sealed_envs
                .iter()
                .map(|sealed| SecretRef {
                    name: sealed.name.clone(),
                    token_id: sealed.token.short_id().to_owned(),
                })
                .collect(),
            egress_allowlist: spec.egress_allowlist.clone(),
            cpu_count: spec.cpu_count,
            memory_mb: spec.memory_mb,
            size_bytes: 0,
        }
    }
}

/// Where checkpoints and snapshots live under the worker's data dir.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    checkpoints: PathBuf,
    snapshots: PathBuf,
}

impl CheckpointStore {
    /// The store under `data_dir` (directories are created on first write).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            checkpoints: data_dir.join("checkpoints"),
            snapshots: data_dir.join("snapshots"),
        }
    }

    /// Directory of one checkpoint.
    pub fn dir(&self, id: CheckpointId) -> PathBuf {
        self.checkpoints.join(id.to_string())
    }

    /// The saved writable layer of a checkpoint.
    pub fn layer(&self, id: CheckpointId) -> PathBuf {
        self.dir(id).join("layer")
    }

    /// Copies `upper` into a new checkpoint, writes its metadata, and returns the bytes the
    /// checkpoint takes on disk (what the org's checkpoint quota counts; ADR 0032).
    pub async fn save(&self, upper: &Path, meta: &CheckpointMeta) -> Result<u64, RuntimeError> {
        let dir = self.dir(meta.checkpoint_id);
        let layer = self.layer(meta.checkpoint_id);
        std::fs::create_dir_all(&layer)
            .map_err(|e| RuntimeError::io(format!("creating {}", layer.display()), e))?;
        let result = async {
            copy_tree(upper, &layer).await?;
            let json = serde_json::to_vec_pretty(meta).map_err(|e| RuntimeError::Setup {
                step: "writing checkpoint metadata",
                detail: e.to_string(),
            })?;
            let path = dir.join("meta.json");
            std::fs::write(&path, json)
                .map_err(|e| RuntimeError::io(format!("writing {}", path.display()), e))?;
            let measured = dir.clone();
            tokio::task::spawn_blocking(move || disk_bytes(&measured))
                .await
                .map_err(|e| RuntimeError::Setup {
                    step: "measuring a checkpoint",
                    detail: e.to_string(),
                })?
                .map_err(|e| RuntimeError::io(format!("measuring {}", dir.display()), e))
        }
        .await;
        if result.is_err() {
            // A half-written checkpoint must not be restorable.
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    /// Reads a checkpoint's metadata.
    pub fn load(&self, id: CheckpointId) -> Result<CheckpointMeta, RuntimeError> {
        let path = self.dir(id).join("meta.json");
        let bytes = std::fs::read(&path).map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => RuntimeError::UnknownCheckpoint(id),
            _ => RuntimeError::io(format!("reading {}", path.display()), error),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| RuntimeError::Setup {
            step: "reading checkpoint metadata",
            detail: format!("{} is corrupt: {e}", path.display()),
        })
    }

    /// Removes a checkpoint (layer and metadata). Returns whether it existed; removing an
    /// unknown checkpoint is not an error (undo steps may run twice).
    pub async fn delete(&self, id: CheckpointId) -> Result<bool, RuntimeError> {
        let dir = self.dir(id);
        if !dir.exists() {
            return Ok(false);
        }
        let target = dir.clone();
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(target))
            .await
            .map_err(|e| RuntimeError::Setup {
                step: "removing a checkpoint",
                detail: e.to_string(),
            })?
            .map_err(|e| RuntimeError::io(format!("removing {}", dir.display()), e))?;
        Ok(true)
    }

    /// Records `name` as a golden snapshot of `checkpoint`.
    pub fn register_snapshot(
        &self,
        name: &str,
        checkpoint: CheckpointId,
    ) -> Result<(), RuntimeError> {
        validate_snapshot_name(name)?;
        self.load(checkpoint)?;
        std::fs::create_dir_all(&self.snapshots)
            .map_err(|e| RuntimeError::io(format!("creating {}", self.snapshots.display()), e))?;
        let path = self.snapshots.join(format!("{name}.json"));
        let json = serde_json::json!({ "version": 1, "name": name, "checkpointID": checkpoint });
        std::fs::write(&path, json.to_string())
            .map_err(|e| RuntimeError::io(format!("writing {}", path.display()), e))
    }

    /// The checkpoint a golden snapshot points at.
    pub fn snapshot(&self, name: &str) -> Result<CheckpointId, RuntimeError> {
        validate_snapshot_name(name)?;
        let path = self.snapshots.join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path)
            .map_err(|_| RuntimeError::UnknownSnapshot(name.to_owned()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|_| RuntimeError::UnknownSnapshot(name.to_owned()))?;
        value["checkpointID"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| RuntimeError::UnknownSnapshot(name.to_owned()))
    }
}

fn validate_snapshot_name(name: &str) -> Result<(), RuntimeError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if valid {
        Ok(())
    } else {
        Err(RuntimeError::UnknownSnapshot(
            name.chars().take(64).collect(),
        ))
    }
}

/// The bytes a directory tree takes on disk: allocated blocks (as `du` counts them, so a
/// sparse disk image counts what it holds, not its apparent length), each inode once (hard
/// links within the tree are not counted twice), symlinks not followed.
pub fn disk_bytes(root: &Path) -> std::io::Result<u64> {
    use std::collections::HashSet;
    use std::os::unix::fs::MetadataExt;

    let mut total = 0u64;
    let mut seen = HashSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path)?;
        if metadata.nlink() > 1
            && !metadata.is_dir()
            && !seen.insert((metadata.dev(), metadata.ino()))
        {
            continue;
        }
        total = total.saturating_add(metadata.blocks().saturating_mul(512));
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(total)
}

/// Copies a directory tree preserving owners, modes, xattrs and overlay whiteouts.
pub async fn copy_tree(from: &Path, to: &Path) -> Result<(), RuntimeError> {
    let source = format!("{}/.", from.display());
    let target = to.display().to_string();
    run_tool(
        "copying a writable layer",
        "cp",
        &["-a", "--reflink=auto", &source, &target],
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use osb_proto::SealedToken;

    use super::*;
    use crate::spec::{ProxyEndpoints, SealedEnv};

    #[test]
    fn metadata_names_secrets_without_their_tokens() {
        let token = SealedToken::from_random_bytes([0x5a; 16]);
        let mut spec = SandboxSpec::new(
            SandboxId::new(),
            ProxyEndpoints {
                transparent_port: 1,
                explicit_port: 2,
            },
            "pem",
        );
        spec.sealed_envs.push(SealedEnv {
            name: "API_KEY".into(),
            token,
        });
        spec.user_envs = BTreeMap::from([("MODE".to_owned(), "plain-value".to_owned())]);
        let meta = CheckpointMeta::describe(CheckpointId::new(), &spec);
        let json = serde_json::to_string(&meta).unwrap();
        assert!(json.contains("API_KEY"));
        assert!(json.contains(token.short_id()));
        assert!(!json.contains(token.as_str()));
        assert!(json.contains("MODE"));
        assert!(!json.contains("plain-value"));
    }

    #[test]
    fn disk_bytes_counts_allocated_blocks_once_per_inode() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        let data: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8 + 1).collect();
        std::fs::write(root.join("sub/data"), &data).unwrap();
        let with_data = disk_bytes(root).unwrap();
        assert!(with_data >= 256 * 1024, "{with_data}");
        assert!(with_data < 256 * 1024 + 64 * 1024, "{with_data}");
        // A hard link to the same data costs nothing more.
        std::fs::hard_link(root.join("sub/data"), root.join("link")).unwrap();
        assert!(disk_bytes(root).unwrap() < with_data + 8 * 1024);
        // A sparse file counts what it holds, not its apparent length.
        let sparse = std::fs::File::create(root.join("sparse")).unwrap();
        sparse.set_len(1 << 30).unwrap();
        assert!(disk_bytes(root).unwrap() < with_data + 64 * 1024);
    }

    #[test]
    fn snapshot_names_are_checked() {
        assert!(validate_snapshot_name("py-3.11_base").is_ok());
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(validate_snapshot_name(bad).is_err(), "{bad}");
        }
    }
}
