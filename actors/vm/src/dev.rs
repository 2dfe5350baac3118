//! The development runtime, for machines without root: sandboxes are plain host processes with a
//! private working directory and the sealed environment (tokens, proxy and CA variables). Egress
//! control is COOPERATIVE ONLY — a program that ignores `HTTPS_PROXY` reaches the network
//! directly, every sandbox shares the host's identity, and nothing confines the file system. It
//! says so loudly when it starts, when each sandbox is created, and in every `SandboxInfo`.
//! It must never be selected when the netns runtime can run, and never for untrusted code.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use osb_proto::{CheckpointId, SandboxId};
use tokio::process::Command;

use crate::checkpoint::{copy_tree, CheckpointMeta, CheckpointStore};
use crate::env::{compose_env, overlay_exec_env, EnvContext};
use crate::error::RuntimeError;
use crate::runtime::{
    ExecOutput, ExecRequest, ExecStream, Isolation, Runtime, SandboxInfo, SandboxState,
};
use crate::spec::{validate_env_name, BootLayer, SandboxSpec};

/// The warning shown at start, on create and in `SandboxInfo::warning`.
pub const DEVELOPMENT_WARNING: &str = "DEVELOPMENT RUNTIME: no isolation; egress control is cooperative (proxy variables only) and sandboxes share the host's identity; never run untrusted code here";

#[derive(Debug, Clone)]
struct DevSandbox {
    spec: SandboxSpec,
    env: BTreeMap<String, String>,
    running: bool,
}

/// Plain-process sandboxes for development without root.
#[derive(Debug)]
pub struct DevelopmentRuntime {
    data_dir: PathBuf,
    store: CheckpointStore,
    sandboxes: Mutex<HashMap<SandboxId, DevSandbox>>,
}

impl DevelopmentRuntime {
    /// A development runtime keeping its files under `data_dir`.
    pub fn new(data_dir: &Path) -> Result<Self, RuntimeError> {
        std::fs::create_dir_all(data_dir.join("dev-sandboxes")).map_err(|e| {
            RuntimeError::io(format!("creating {}/dev-sandboxes", data_dir.display()), e)
        })?;
        tracing::warn!("{DEVELOPMENT_WARNING}");
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            store: CheckpointStore::new(data_dir),
            sandboxes: Mutex::new(HashMap::new()),
        })
    }

    fn dir(&self, id: SandboxId) -> PathBuf {
        self.data_dir.join("dev-sandboxes").join(id.to_string())
    }

    fn workspace(&self, id: SandboxId) -> PathBuf {
        self.dir(id).join("workspace")
    }

    fn get(&self, id: SandboxId) -> Result<DevSandbox, RuntimeError> {
        self.sandboxes
            .lock()
            .ok()
            .and_then(|map| map.get(&id).cloned())
            .ok_or(RuntimeError::UnknownSandbox(id))
    }

    fn set_running(&self, id: SandboxId, running: bool) -> Result<(), RuntimeError> {
        let mut map = self.sandboxes.lock().map_err(|_| poisoned())?;
        let sandbox = map.get_mut(&id).ok_or(RuntimeError::UnknownSandbox(id))?;
        sandbox.running = running;
        Ok(())
    }

    fn info_of(&self, sandbox: &DevSandbox) -> SandboxInfo {
        SandboxInfo {
            sandbox_id: sandbox.spec.id,
            address: Ipv4Addr::LOCALHOST,
            gateway: Ipv4Addr::LOCALHOST,
            state: if sandbox.running {
                SandboxState::Running
            } else {
                SandboxState::Stopped
            },
            isolation: Isolation::DevelopmentCooperative,
            warning: Some(DEVELOPMENT_WARNING.to_owned()),
        }
    }

    fn command(&self, id: SandboxId, request: &ExecRequest) -> Result<Command, RuntimeError> {
        let sandbox = self.get(id)?;
        if !sandbox.running {
            return Err(RuntimeError::NotRunning(id));
        }
        let Some((program, args)) = request.cmd.split_first() else {
            return Err(RuntimeError::EmptyCommand);
        };
        for name in request.env.keys() {
            validate_env_name(name)?;
        }
        let workspace = self.workspace(id);
        // `/workspace…` maps to the sandbox's own directory, as inside a real sandbox.
        let cwd = match request.cwd.as_deref() {
            None => workspace.clone(),
            Some(path) => match path.strip_prefix("/workspace") {
                Some(rest) => workspace.join(rest.trim_start_matches('/')),
                None => PathBuf::from(path),
            },
        };
        let mut env = overlay_exec_env(&sandbox.env, &request.env);
        env.insert("HOME".into(), workspace.display().to_string());
        let mut command = Command::new(program);
        command.args(args).env_clear().envs(env).current_dir(cwd);
        Ok(command)
    }
}

fn poisoned() -> RuntimeError {
    RuntimeError::Setup {
        step: "reading the sandbox table",
        detail: "the lock is poisoned; restart the worker".into(),
    }
}

#[async_trait]
impl Runtime for DevelopmentRuntime {
    fn isolation(&self) -> Isolation {
        Isolation::DevelopmentCooperative
    }

    async fn create(&self, spec: SandboxSpec) -> Result<SandboxInfo, RuntimeError> {
        spec.require_runtime(crate::spec::RuntimeKind::Netns)?;
        spec.validate()?;
        let id = spec.id;
        if self.get(id).is_ok() {
            return Err(RuntimeError::AlreadyExists(id));
        }
        let dir = self.dir(id);
        let workspace = self.workspace(id);
        std::fs::create_dir_all(&workspace)
            .map_err(|e| RuntimeError::io(format!("creating {}", workspace.display()), e))?;
        let layer = match &spec.boot_from {
            BootLayer::Fresh => None,
            BootLayer::Checkpoint(checkpoint) => Some(self.store.layer(*checkpoint)),
            BootLayer::Snapshot(name) => Some(self.store.layer(self.store.snapshot(name)?)),
        };
        let ca_file = dir.join("proxy-ca.pem");
        let prepared = async {
            if let Some(layer) = layer {
                if !layer.exists() {
                    return Err(RuntimeError::Setup {
                        step: "booting from a checkpoint",
                        detail: format!("{} does not exist", layer.display()),
                    });
                }
                copy_tree(&layer, &workspace).await?;
            }
            std::fs::write(&ca_file, &spec.ca_pem)
                .map_err(|e| RuntimeError::io(format!("writing {}", ca_file.display()), e))
        }
        .await;
        if let Err(error) = prepared {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(error);
        }
        let ca_path = ca_file.display().to_string();
        let env = compose_env(
            &EnvContext {
                proxy_url: format!("http://127.0.0.1:{}", spec.proxy.explicit_port),
                ca_bundle_path: ca_path.clone(),
                ca_cert_path: ca_path,
                home: workspace.display().to_string(),
                user: "sandbox".into(),
            },
            &spec.sealed_envs,
            &spec.user_envs,
        );
        tracing::warn!(sandbox_id = %id, "sandbox created by the development runtime: egress control is cooperative only");
        let sandbox = DevSandbox {
            spec,
            env,
            running: true,
        };
        let info = self.info_of(&sandbox);
        self.sandboxes
            .lock()
            .map_err(|_| poisoned())?
            .insert(id, sandbox);
        Ok(info)
    }

    async fn exec(&self, id: SandboxId, request: ExecRequest) -> Result<ExecOutput, RuntimeError> {
        let command = self.command(id, &request)?;
        crate::exec::run_bounded(command, request.timeout, request.max_output_bytes).await
    }

    async fn exec_streaming(
        &self,
        id: SandboxId,
        request: ExecRequest,
    ) -> Result<ExecStream, RuntimeError> {
        let command = self.command(id, &request)?;
        crate::exec::spawn_streaming(command, request.timeout)
    }

    async fn info(&self, id: SandboxId) -> Result<SandboxInfo, RuntimeError> {
        Ok(self.info_of(&self.get(id)?))
    }

    async fn stop(&self, id: SandboxId) -> Result<(), RuntimeError> {
        self.set_running(id, false)
    }

    async fn start(&self, id: SandboxId) -> Result<(), RuntimeError> {
        self.set_running(id, true)
    }

    async fn destroy(&self, id: SandboxId) -> Result<(), RuntimeError> {
        let removed = self.sandboxes.lock().map_err(|_| poisoned())?.remove(&id);
        if removed.is_some() {
            let dir = self.dir(id);
            tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir))
                .await
                .ok()
                .transpose()
                .map_err(|e| RuntimeError::io("removing a development sandbox", e))?;
        }
        Ok(())
    }

    async fn checkpoint(&self, id: SandboxId) -> Result<CheckpointMeta, RuntimeError> {
        let sandbox = self.get(id)?;
        let mut meta = CheckpointMeta::describe(CheckpointId::new(), &sandbox.spec);
        meta.size_bytes = self.store.save(&self.workspace(id), &meta).await?;
        Ok(meta)
    }

    async fn set_egress_allowlist(
        &self,
        id: SandboxId,
        allowlist: Vec<String>,
    ) -> Result<(), RuntimeError> {
        let mut map = self
            .sandboxes
            .lock()
            .map_err(|_| RuntimeError::UnknownSandbox(id))?;
        let sandbox = map.get_mut(&id).ok_or(RuntimeError::UnknownSandbox(id))?;
        let mut spec = sandbox.spec.clone();
        spec.egress_allowlist = allowlist;
        spec.validate()?;
        sandbox.spec = spec;
        Ok(())
    }

    async fn delete_checkpoint(&self, checkpoint: CheckpointId) -> Result<bool, RuntimeError> {
        self.store.delete(checkpoint).await
    }

    async fn restore(&self, id: SandboxId, checkpoint: CheckpointId) -> Result<(), RuntimeError> {
        self.store.load(checkpoint)?;
        self.get(id)?;
        let workspace = self.workspace(id);
        let target = workspace.clone();
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(target))
            .await
            .ok()
            .transpose()
            .map_err(|e| RuntimeError::io("clearing a development workspace", e))?;
        std::fs::create_dir_all(&workspace)
            .map_err(|e| RuntimeError::io(format!("creating {}", workspace.display()), e))?;
        copy_tree(&self.store.layer(checkpoint), &workspace).await?;
        self.set_running(id, true)
    }

    async fn fork(
        &self,
        checkpoint: CheckpointId,
        mut spec: SandboxSpec,
    ) -> Result<SandboxInfo, RuntimeError> {
        self.store.load(checkpoint)?;
        spec.boot_from = BootLayer::Checkpoint(checkpoint);
        self.create(spec).await
    }

    async fn register_snapshot(
        &self,
        name: &str,
        checkpoint: CheckpointId,
    ) -> Result<(), RuntimeError> {
        self.store.register_snapshot(name, checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use osb_proto::SealedToken;

    use super::*;
    use crate::spec::{ProxyEndpoints, SealedEnv};

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nDEV\n-----END CERTIFICATE-----\n";

    fn spec() -> SandboxSpec {
        let mut spec = SandboxSpec::new(
            SandboxId::new(),
            ProxyEndpoints {
                transparent_port: 1,
                explicit_port: 3128,
            },
            PEM,
        );
        spec.sealed_envs.push(SealedEnv {
            name: "API_KEY".into(),
            token: SealedToken::from_random_bytes([3; 16]),
        });
        spec
    }

    #[tokio::test]
    async fn says_it_is_cooperative_and_still_seals_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = DevelopmentRuntime::new(dir.path()).unwrap();
        let spec = spec();
        let id = spec.id;
        let token = spec.sealed_envs[0].token;
        let info = runtime.create(spec).await.unwrap();
        assert_eq!(info.isolation, Isolation::DevelopmentCooperative);
        assert!(info.warning.unwrap().contains("cooperative"));
        let out = runtime
            .exec(
                id,
                ExecRequest::shell("echo $API_KEY; echo $HTTPS_PROXY; pwd; cat \"$SSL_CERT_FILE\""),
            )
            .await
            .unwrap();
        assert!(out.stdout.contains(token.as_str()));
        assert!(out.stdout.contains("http://127.0.0.1:3128"));
        assert!(out.stdout.contains("DEV"));
        assert!(out.stdout.contains("workspace"));
    }

    #[tokio::test]
    async fn checkpoint_restore_and_fork_work_on_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = DevelopmentRuntime::new(dir.path()).unwrap();
        let spec = spec();
        let id = spec.id;
        runtime.create(spec).await.unwrap();
        runtime
            .exec(id, ExecRequest::shell("echo v1 > state"))
            .await
            .unwrap();
        let checkpoint = runtime.checkpoint(id).await.unwrap();
        runtime
            .exec(id, ExecRequest::shell("echo v2 > state"))
            .await
            .unwrap();
        runtime.restore(id, checkpoint.checkpoint_id).await.unwrap();
        let out = runtime
            .exec(id, ExecRequest::shell("cat state"))
            .await
            .unwrap();
        assert_eq!(out.stdout, "v1\n");
        let fork = self::spec();
        let fork_id = fork.id;
        runtime.fork(checkpoint.checkpoint_id, fork).await.unwrap();
        assert_eq!(
            runtime
                .exec(fork_id, ExecRequest::shell("cat state"))
                .await
                .unwrap()
                .stdout,
            "v1\n"
        );
        runtime.stop(id).await.unwrap();
        assert!(matches!(
            runtime.exec(id, ExecRequest::new(["true"])).await,
            Err(RuntimeError::NotRunning(_))
        ));
        runtime.destroy(id).await.unwrap();
        runtime.destroy(id).await.unwrap();
    }
}
