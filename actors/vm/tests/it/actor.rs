//! `VmActor` under a supervisor: boot (idempotent), exec, checkpoint, restore, stop and destroy,
//! each reported as an event in order.

use std::sync::Arc;

use osb_vm::actor::{
    BootSandbox, CheckpointSandbox, DestroySandbox, ExecCommand, GetState, RestoreSandbox,
    StopSandbox,
};
use osb_vm::{ExecRequest, Runtime, SandboxState, VmActor};

use crate::support::{spec_with_secret, token, unused_proxy, TestPki, TestWorker};

#[actix::test]
async fn the_actor_owns_one_sandbox_and_reports_every_state_change() {
    let worker = TestWorker::start(60).await;
    let pki = TestPki::new("unused.test");
    let spec = spec_with_secret(unused_proxy(), &pki.ca_pem, "API_KEY", token());
    let id = spec.id;
    let runtime: Arc<dyn Runtime> = Arc::new(worker.runtime.clone());
    let actor = VmActor::new(runtime, spec, worker.sink.clone()).start_supervised();

    let booted = actor
        .send(BootSandbox)
        .await
        .expect("mailbox")
        .expect("boot");
    assert_eq!(booted.sandbox_id, id);
    // Booting again (a replayed saga step) reports the same sandbox without recreating it.
    let again = actor
        .send(BootSandbox)
        .await
        .expect("mailbox")
        .expect("boot twice");
    assert_eq!(again.address, booted.address);

    let out = actor
        .send(ExecCommand(ExecRequest::shell(
            "echo one > /workspace/f; cat /workspace/f",
        )))
        .await
        .expect("mailbox")
        .expect("exec");
    assert_eq!(out.stdout, "one\n");
    let checkpoint = actor
        .send(CheckpointSandbox)
        .await
        .expect("mailbox")
        .expect("checkpoint");
    actor
        .send(ExecCommand(ExecRequest::shell("echo two > /workspace/f")))
        .await
        .expect("mailbox")
        .expect("exec");
    actor
        .send(RestoreSandbox(checkpoint.checkpoint_id))
        .await
        .expect("mailbox")
        .expect("restore");
    let out = actor
        .send(ExecCommand(ExecRequest::new(["cat", "/workspace/f"])))
        .await
        .expect("mailbox")
        .expect("exec");
    assert_eq!(out.stdout, "one\n");
    actor
        .send(StopSandbox)
        .await
        .expect("mailbox")
        .expect("stop");
    let state = actor.send(GetState).await.expect("mailbox");
    assert_eq!(
        state.info.map(|info| info.state),
        Some(SandboxState::Stopped)
    );
    // A failing operation is reported as `failed`.
    let refused = actor
        .send(RestoreSandbox(osb_proto::CheckpointId::new()))
        .await
        .expect("mailbox");
    assert!(refused.is_err());
    actor
        .send(DestroySandbox)
        .await
        .expect("mailbox")
        .expect("destroy");

    let names: Vec<&str> = worker
        .sink
        .events()
        .iter()
        .filter(|event| event.sandbox_id == id)
        .map(|event| event.name())
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        names,
        [
            "started",
            "checkpointed",
            "restored",
            "stopped",
            "failed",
            "stopped"
        ],
        "events in order"
    );
    assert!(worker.runtime.census().await.expect("census").is_empty());
}
