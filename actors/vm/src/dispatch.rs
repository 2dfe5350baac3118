//! A worker with more than one runtime: each sandbox runs on the runtime its spec names
//! (`runtime: "netns" | "microvm"`), and every later call for that sandbox goes to the same
//! one. Checkpoint-keyed calls without a sandbox ask each runtime (each keeps its own store).
//! This module must never run a sandbox on another runtime than the one its spec asked for: a
//! missing runtime is a clear refusal, never a fallback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use osb_proto::{CheckpointId, SandboxId};

use crate::checkpoint::CheckpointMeta;
use crate::error::RuntimeError;
use crate::runtime::{ExecOutput, ExecRequest, ExecStream, Isolation, Runtime, SandboxInfo};
use crate::spec::{RuntimeKind, SandboxSpec};

/// Routes sandboxes to the netns (or development) runtime and, when configured, the microVM
/// runtime.
#[derive(Debug)]
pub struct DispatchRuntime {
    netns: Arc<dyn Runtime>,
    microvm: Result<Arc<dyn Runtime>, String>,
    owners: Mutex<HashMap<SandboxId, RuntimeKind>>,
}

impl DispatchRuntime {
    /// `netns` serves `runtime: "netns"` (it may be the development runtime); `microvm` serves
    /// `runtime: "microvm"`, or says why this worker has none.
    pub fn new(netns: Arc<dyn Runtime>, microvm: Result<Arc<dyn Runtime>, String>) -> Self {
        Self {
            netns,
            microvm,
            owners: Mutex::new(HashMap::new()),
        }
    }

    /// The runtimes this worker offers (what its heartbeat advertises).
    pub fn kinds(&self) -> Vec<RuntimeKind> {
        let mut kinds = vec![RuntimeKind::Netns];
        if self.microvm.is_ok() {
            kinds.push(RuntimeKind::Microvm);
        }
        kinds
    }

    fn for_kind(&self, kind: RuntimeKind) -> Result<&Arc<dyn Runtime>, RuntimeError> {
        match kind {
            RuntimeKind::Netns => Ok(&self.netns),
            RuntimeKind::Microvm => {
                self.microvm
                    .as_ref()
                    .map_err(|reason| RuntimeError::RuntimeUnavailable {
                        kind: kind.to_string(),
                        reason: reason.clone(),
                    })
            }
        }
    }

    fn for_sandbox(&self, id: SandboxId) -> Result<&Arc<dyn Runtime>, RuntimeError> {
        let kind = self
            .owners
            .lock()
            .ok()
            .and_then(|owners| owners.get(&id).copied())
            .ok_or(RuntimeError::UnknownSandbox(id))?;
        self.for_kind(kind)
    }

    fn all(&self) -> Vec<&Arc<dyn Runtime>> {
        let mut all = vec![&self.netns];
        if let Ok(microvm) = &self.microvm {
            all.push(microvm);
        }
        all
    }

    fn remember(&self, id: SandboxId, kind: RuntimeKind) {
        if let Ok(mut owners) = self.owners.lock() {
            owners.insert(id, kind);
        }
    }
}

#[async_trait]
impl Runtime for DispatchRuntime {
    fn isolation(&self) -> Isolation {
        self.netns.isolation()
    }

    async fn create(&self, spec: SandboxSpec) -> Result<SandboxInfo, RuntimeError> {
        let (id, kind) = (spec.id, spec.runtime);
        let info = self.for_kind(kind)?.create(spec).await?;
        self.remember(id, kind);
        Ok(info)
    }

    async fn exec(&self, id: SandboxId, request: ExecRequest) -> Result<ExecOutput, RuntimeError> {
        self.for_sandbox(id)?.exec(id, request).await
    }

    async fn exec_streaming(
        &self,
        id: SandboxId,
        request: ExecRequest,
    ) -> Result<ExecStream, RuntimeError> {
        self.for_sandbox(id)?.exec_streaming(id, request).await
    }

    async fn info(&self, id: SandboxId) -> Result<SandboxInfo, RuntimeError> {
        self.for_sandbox(id)?.info(id).await
    }

    async fn stop(&self, id: SandboxId) -> Result<(), RuntimeError> {
        self.for_sandbox(id)?.stop(id).await
    }

    async fn start(&self, id: SandboxId) -> Result<(), RuntimeError> {
        self.for_sandbox(id)?.start(id).await
    }

    async fn destroy(&self, id: SandboxId) -> Result<(), RuntimeError> {
        let runtime = match self.for_sandbox(id) {
            Ok(runtime) => Arc::clone(runtime),
            Err(RuntimeError::UnknownSandbox(_)) => return Ok(()),
            Err(error) => return Err(error),
        };
        runtime.destroy(id).await?;
        if let Ok(mut owners) = self.owners.lock() {
            owners.remove(&id);
        }
        Ok(())
    }

    async fn checkpoint(&self, id: SandboxId) -> Result<CheckpointMeta, RuntimeError> {
        self.for_sandbox(id)?.checkpoint(id).await
    }

    async fn set_egress_allowlist(
        &self,
        id: SandboxId,
        allowlist: Vec<String>,
    ) -> Result<(), RuntimeError> {
        self.for_sandbox(id)?
            .set_egress_allowlist(id, allowlist)
            .await
    }

    async fn delete_checkpoint(&self, checkpoint: CheckpointId) -> Result<bool, RuntimeError> {
        let mut existed = false;
        for runtime in self.all() {
            existed |= runtime.delete_checkpoint(checkpoint).await?;
        }
        Ok(existed)
    }

    async fn restore(&self, id: SandboxId, checkpoint: CheckpointId) -> Result<(), RuntimeError> {
        self.for_sandbox(id)?.restore(id, checkpoint).await
    }

    async fn fork(
        &self,
        checkpoint: CheckpointId,
        spec: SandboxSpec,
    ) -> Result<SandboxInfo, RuntimeError> {
        let (id, kind) = (spec.id, spec.runtime);
        let info = self.for_kind(kind)?.fork(checkpoint, spec).await?;
        self.remember(id, kind);
        Ok(info)
    }

    async fn drain_warm_pool(&self) {
        for runtime in self.all() {
            runtime.drain_warm_pool().await;
        }
    }

    async fn register_snapshot(
        &self,
        name: &str,
        checkpoint: CheckpointId,
    ) -> Result<(), RuntimeError> {
        let mut outcome = Err(RuntimeError::UnknownCheckpoint(checkpoint));
        for runtime in self.all() {
            outcome = runtime.register_snapshot(name, checkpoint).await;
            if !matches!(outcome, Err(RuntimeError::UnknownCheckpoint(_))) {
                break;
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::DevelopmentRuntime;
    use crate::spec::ProxyEndpoints;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[tokio::test]
    async fn a_microvm_spec_without_a_microvm_runtime_is_refused_not_downgraded() {
        let dir = tempfile::tempdir().unwrap();
        let dev: Arc<dyn Runtime> = Arc::new(DevelopmentRuntime::new(dir.path()).unwrap());
        let dispatch = DispatchRuntime::new(dev, Err("no guest image".into()));
        assert_eq!(dispatch.kinds(), vec![RuntimeKind::Netns]);
        let mut spec = SandboxSpec::new(
            SandboxId::new(),
            ProxyEndpoints {
                transparent_port: 1,
                explicit_port: 2,
            },
            PEM,
        );
        spec.runtime = RuntimeKind::Microvm;
        let error = dispatch.create(spec.clone()).await.unwrap_err();
        assert!(
            matches!(error, RuntimeError::RuntimeUnavailable { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("no guest image"), "{error}");
        // Nothing was created, and a runtime handed the spec directly refuses it too.
        assert!(matches!(
            dispatch.info(spec.id).await,
            Err(RuntimeError::UnknownSandbox(_))
        ));
        let dev = DevelopmentRuntime::new(&dir.path().join("direct")).unwrap();
        assert!(matches!(
            dev.create(spec).await,
            Err(RuntimeError::RuntimeUnavailable { .. })
        ));
    }
}
