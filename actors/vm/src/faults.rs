//! Fault injection for tests of the code above the runtime (the `VmActor`, the worker): a
//! `Runtime` wrapper that panics where a bug would. Nothing in production constructs it; it
//! must never change what the wrapped runtime does when it is not armed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use osb_proto::{CheckpointId, SandboxId};

use crate::checkpoint::CheckpointMeta;
use crate::error::RuntimeError;
use crate::runtime::{ExecOutput, ExecRequest, ExecStream, Isolation, Runtime, SandboxInfo};
use crate::spec::SandboxSpec;

/// A runtime that panics in its next `checkpoint` once armed (before touching the sandbox),
/// and otherwise is the runtime it wraps.
#[derive(Debug)]
pub struct PanicOnCheckpoint {
    inner: Arc<dyn Runtime>,
    armed: AtomicBool,
}

impl PanicOnCheckpoint {
    pub fn new(inner: Arc<dyn Runtime>) -> Self {
        Self {
            inner,
            armed: AtomicBool::new(false),
        }
    }

    /// The next checkpoint panics.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Runtime for PanicOnCheckpoint {
    fn isolation(&self) -> Isolation {
        self.inner.isolation()
    }
    async fn create(&self, spec: SandboxSpec) -> Result<SandboxInfo, RuntimeError> {
        self.inner.create(spec).await
    }
    async fn exec(&self, id: SandboxId, request: ExecRequest) -> Result<ExecOutput, RuntimeError> {
        self.inner.exec(id, request).await
    }
    async fn exec_streaming(
        &self,
        id: SandboxId,
        request: ExecRequest,
    ) -> Result<ExecStream, RuntimeError> {
        self.inner.exec_streaming(id, request).await
    }
    async fn info(&self, id: SandboxId) -> Result<SandboxInfo, RuntimeError> {
        self.inner.info(id).await
    }
    async fn stop(&self, id: SandboxId) -> Result<(), RuntimeError> {
        self.inner.stop(id).await
    }
    async fn start(&self, id: SandboxId) -> Result<(), RuntimeError> {
        self.inner.start(id).await
    }
    async fn destroy(&self, id: SandboxId) -> Result<(), RuntimeError> {
        self.inner.destroy(id).await
    }
    async fn checkpoint(&self, id: SandboxId) -> Result<CheckpointMeta, RuntimeError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            panic!("injected panic during checkpoint");
        }
        self.inner.checkpoint(id).await
    }
    async fn set_egress_allowlist(
        &self,
        id: SandboxId,
        allowlist: Vec<String>,
    ) -> Result<(), RuntimeError> {
        self.inner.set_egress_allowlist(id, allowlist).await
    }
    async fn delete_checkpoint(&self, checkpoint: CheckpointId) -> Result<bool, RuntimeError> {
        self.inner.delete_checkpoint(checkpoint).await
    }
    async fn restore(&self, id: SandboxId, checkpoint: CheckpointId) -> Result<(), RuntimeError> {
        self.inner.restore(id, checkpoint).await
    }
    async fn fork(
        &self,
        checkpoint: CheckpointId,
        spec: SandboxSpec,
    ) -> Result<SandboxInfo, RuntimeError> {
        self.inner.fork(checkpoint, spec).await
    }
    async fn register_snapshot(
        &self,
        name: &str,
        checkpoint: CheckpointId,
    ) -> Result<(), RuntimeError> {
        self.inner.register_snapshot(name, checkpoint).await
    }
}
