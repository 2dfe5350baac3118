//! `VmActor` faults: commands its lifecycle forbids are refused without touching the runtime,
//! and a panic during a checkpoint restarts the actor, which resyncs from the runtime; the
//! flow then completes and nothing is left behind (no namespace, rule, layer or checkpoint of
//! the failed attempt).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use osb_proto::{CheckpointId, SandboxId};
use osb_vm::actor::{
    BootSandbox, CheckpointSandbox, DestroySandbox, ExecCommand, GetState, RestoreSandbox,
};
use osb_vm::{
    CheckpointMeta, ExecOutput, ExecRequest, ExecStream, Isolation, Lifecycle, Runtime,
    RuntimeError, SandboxInfo, SandboxSpec, VmActor, VmError,
};

use crate::support::{spec, unused_proxy, TestPki, TestWorker};

/// A runtime that panics in `checkpoint` while armed (before touching the sandbox), and
/// otherwise is the real netns runtime.
#[derive(Debug)]
struct PanicOnCheckpoint {
    inner: Arc<dyn Runtime>,
    armed: AtomicBool,
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

#[actix::test]
async fn commands_the_lifecycle_forbids_are_refused_and_change_nothing() {
    let worker = TestWorker::start(61).await;
    let pki = TestPki::new("unused.test");
    let runtime: Arc<dyn Runtime> = Arc::new(worker.runtime.clone());
    let actor = VmActor::new(
        runtime,
        spec(unused_proxy(), &pki.ca_pem),
        worker.sink.clone(),
    )
    .start_supervised();

    let early = actor
        .send(ExecCommand(ExecRequest::shell("true")))
        .await
        .expect("mailbox");
    assert!(matches!(early, Err(VmError::Refused(_))), "{early:?}");
    assert!(worker.runtime.census().await.expect("census").is_empty());

    actor
        .send(BootSandbox)
        .await
        .expect("mailbox")
        .expect("boot");
    actor
        .send(DestroySandbox)
        .await
        .expect("mailbox")
        .expect("destroy");
    actor
        .send(DestroySandbox)
        .await
        .expect("mailbox")
        .expect("a second destroy is harmless");
    let late = actor
        .send(RestoreSandbox(CheckpointId::new()))
        .await
        .expect("mailbox");
    let Err(VmError::Refused(refusal)) = late else {
        panic!("a destroyed sandbox refuses a restore: {late:?}");
    };
    assert_eq!(refusal.state, "destroyed");
    assert_eq!(restarts(&actor).await, 0, "a refusal is not fatal");
    assert!(worker.runtime.census().await.expect("census").is_empty());
}

async fn restarts(actor: &actix::Addr<VmActor>) -> u32 {
    actor.send(GetState).await.expect("mailbox").restarts
}

#[actix::test]
async fn a_panic_during_a_checkpoint_restarts_the_actor_which_resyncs_and_orphans_nothing() {
    let worker = TestWorker::start(62).await;
    let pki = TestPki::new("unused.test");
    let runtime = Arc::new(PanicOnCheckpoint {
        inner: Arc::new(worker.runtime.clone()),
        armed: AtomicBool::new(false),
    });
    let actor = VmActor::new(
        runtime.clone(),
        spec(unused_proxy(), &pki.ca_pem),
        worker.sink.clone(),
    )
    .start_supervised();
    actor
        .send(BootSandbox)
        .await
        .expect("mailbox")
        .expect("boot");
    actor
        .send(ExecCommand(ExecRequest::shell("echo kept > /workspace/f")))
        .await
        .expect("mailbox")
        .expect("exec");

    runtime.armed.store(true, Ordering::SeqCst);
    let crashed = actor.send(CheckpointSandbox).await.expect("mailbox");
    assert!(
        matches!(&crashed, Err(error) if error.is_fatal()),
        "{crashed:?}"
    );
    // The supervisor restarted the actor; it re-read the sandbox from the runtime.
    let state = actor.send(GetState).await.expect("mailbox");
    assert_eq!(state.restarts, 1);
    assert_eq!(state.lifecycle, Lifecycle::Running);
    assert!(state.info.is_some());

    // The flow completes: the sandbox still works and the retried checkpoint is taken.
    let out = actor
        .send(ExecCommand(ExecRequest::new(["cat", "/workspace/f"])))
        .await
        .expect("mailbox")
        .expect("exec after restart");
    assert_eq!(out.stdout, "kept\n");
    let checkpoint = actor
        .send(CheckpointSandbox)
        .await
        .expect("mailbox")
        .expect("retried checkpoint");
    actor
        .send(DestroySandbox)
        .await
        .expect("mailbox")
        .expect("destroy");
    assert!(worker
        .runtime
        .delete_checkpoint(checkpoint.checkpoint_id)
        .await
        .expect("delete checkpoint"));
    // Nothing of the sandbox or of the failed attempt is left.
    assert!(worker.runtime.census().await.expect("census").is_empty());
}
