//! `VmActor` faults: commands its lifecycle forbids are refused without touching the runtime,
//! and a panic during a checkpoint restarts the actor, which resyncs from the runtime; the
//! flow then completes and nothing is left behind (no namespace, rule, layer or checkpoint of
//! the failed attempt).

use std::sync::Arc;

use osb_proto::CheckpointId;
use osb_vm::actor::{
    BootSandbox, CheckpointSandbox, DestroySandbox, ExecCommand, GetState, RestoreSandbox,
};
use osb_vm::faults::PanicOnCheckpoint;
use osb_vm::{ExecRequest, Lifecycle, Runtime, VmActor, VmError};

use crate::support::{spec, unused_proxy, TestPki, TestWorker};

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
    let runtime = Arc::new(PanicOnCheckpoint::new(Arc::new(worker.runtime.clone())));
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

    runtime.arm();
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
