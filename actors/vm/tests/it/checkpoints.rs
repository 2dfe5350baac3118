//! Checkpoint, in-place restore, fork and golden snapshots: restore brings back the layer with
//! the same tokens; a fork and a snapshot boot get the caller's fresh tokens, and the parent's
//! token survives only as file content, not in the environment.

use osb_vm::{BootLayer, Runtime, RuntimeError};

use crate::support::{spec_with_secret, token, unused_proxy, TestPki, TestWorker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_keeps_tokens_and_fork_and_snapshot_get_fresh_ones() {
    restore_keeps_tokens_and_fork_and_snapshot_get_fresh_ones_on(TestWorker::start(30).await).await;
}

/// The same on sandboxes claimed from a warm pool (ADR 0208).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_keeps_tokens_and_fork_and_snapshot_get_fresh_ones_claimed() {
    restore_keeps_tokens_and_fork_and_snapshot_get_fresh_ones_on(
        TestWorker::start_pooled(130, 4).await,
    )
    .await;
}

async fn restore_keeps_tokens_and_fork_and_snapshot_get_fresh_ones_on(worker: TestWorker) {
    let pki = TestPki::new("unused.test");
    let proxy = unused_proxy();
    let parent_token = token();
    let parent = worker
        .create(spec_with_secret(
            proxy,
            &pki.ca_pem,
            "API_KEY",
            parent_token,
        ))
        .await;
    let parent_address = worker.runtime.info(parent).await.expect("info").address;
    worker
        .sh(
            parent,
            "echo \"v1 $API_KEY\" > /workspace/state.txt; rm -f /etc/hostname 2>/dev/null; true",
        )
        .await;
    let checkpoint = worker.runtime.checkpoint(parent).await.expect("checkpoint");
    assert_eq!(checkpoint.secrets.len(), 1);
    assert_eq!(checkpoint.secrets[0].name, "API_KEY");
    assert_eq!(checkpoint.secrets[0].token_id, parent_token.short_id());
    // The checkpoint's size on disk: at least the file written and the metadata.
    assert!(checkpoint.size_bytes >= 4096, "{}", checkpoint.size_bytes);

    // Change things, then restore in place.
    worker
        .sh(
            parent,
            "echo v2 > /workspace/state.txt; touch /workspace/later.txt",
        )
        .await;
    worker
        .runtime
        .restore(parent, checkpoint.checkpoint_id)
        .await
        .expect("restore");
    let restored = worker
        .sh(
            parent,
            "cat /workspace/state.txt; ls /workspace; echo \"env $API_KEY\"",
        )
        .await;
    assert!(
        restored
            .stdout
            .contains(&format!("v1 {}", parent_token.as_str())),
        "{restored:?}"
    );
    assert!(!restored.stdout.contains("later.txt"), "{restored:?}");
    assert!(restored
        .stdout
        .contains(&format!("env {}", parent_token.as_str())));
    assert_eq!(
        worker.runtime.info(parent).await.expect("info").address,
        parent_address
    );

    // Fork: new sandbox, fresh token; the parent's token is only file content there.
    let fork_token = token();
    let fork_spec = spec_with_secret(proxy, &pki.ca_pem, "API_KEY", fork_token);
    let fork = fork_spec.id;
    let fork_info = worker
        .runtime
        .fork(checkpoint.checkpoint_id, fork_spec)
        .await
        .expect("fork");
    assert_ne!(fork_info.address, parent_address);
    let forked = worker
        .sh(
            fork,
            "cat /workspace/state.txt; echo \"env $API_KEY\"; env | grep -c osb_sealed_",
        )
        .await;
    assert!(
        forked
            .stdout
            .contains(&format!("v1 {}", parent_token.as_str())),
        "{forked:?}"
    );
    assert!(
        forked
            .stdout
            .contains(&format!("env {}", fork_token.as_str())),
        "{forked:?}"
    );
    let environment = worker.sh(fork, "env").await;
    assert!(!environment.stdout.contains(parent_token.as_str()));

    // Golden snapshot: a named checkpoint new sandboxes boot from, each with its own tokens.
    worker
        .runtime
        .register_snapshot("golden", checkpoint.checkpoint_id)
        .await
        .expect("snapshot");
    let golden_token = token();
    let mut golden_spec = spec_with_secret(proxy, &pki.ca_pem, "API_KEY", golden_token);
    golden_spec.boot_from = BootLayer::Snapshot("golden".into());
    let golden = worker.create(golden_spec).await;
    let booted = worker
        .sh(golden, "cat /workspace/state.txt; echo \"env $API_KEY\"")
        .await;
    assert!(booted.stdout.starts_with("v1 "), "{booted:?}");
    assert!(booted
        .stdout
        .contains(&format!("env {}", golden_token.as_str())));

    // Unknown snapshots and checkpoints are refused clearly.
    let mut missing = spec_with_secret(proxy, &pki.ca_pem, "API_KEY", token());
    missing.boot_from = BootLayer::Snapshot("nope".into());
    let error = worker
        .runtime
        .create(missing)
        .await
        .expect_err("unknown snapshot");
    assert!(matches!(error, RuntimeError::UnknownSnapshot(_)), "{error}");
    let error = worker
        .runtime
        .restore(parent, osb_proto::CheckpointId::new())
        .await
        .expect_err("unknown checkpoint");
    assert!(
        matches!(error, RuntimeError::UnknownCheckpoint(_)),
        "{error}"
    );
    // The refusals left nothing half-built behind (beside the warm pool, if any, once full).
    assert!(worker.wait_for_pool().await);
    let census = worker.runtime.census().await.expect("census");
    assert_eq!(census.netns - census.pooled, 3, "{census:?}");
    assert_eq!(census.sandbox_dirs - census.pooled, 3, "{census:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_of_a_busy_sandbox_is_complete_and_leaves_it_running() {
    let worker = TestWorker::start(31).await;
    let pki = TestPki::new("unused.test");
    let id = worker
        .create(spec_with_secret(
            unused_proxy(),
            &pki.ca_pem,
            "API_KEY",
            token(),
        ))
        .await;
    // A writer that keeps rewriting a file while the checkpoint is taken.
    let started = worker
        .sh(id, "nohup sh -c 'i=0; while :; do i=$((i+1)); echo $i > /workspace/next; mv /workspace/next /workspace/counter; done' >/dev/null 2>&1 & while [ ! -s /workspace/counter ]; do :; done; echo running")
        .await;
    assert_eq!(started.stdout.trim(), "running", "{started:?}");
    let checkpoint = worker.runtime.checkpoint(id).await.expect("checkpoint");
    let saved = std::fs::read_to_string(
        worker
            .data_dir
            .join("checkpoints")
            .join(checkpoint.checkpoint_id.to_string())
            .join("layer/workspace/counter"),
    )
    .expect("the counter file is in the checkpoint");
    // The copy holds a complete value (the sandbox is frozen while its layer is copied).
    assert!(saved.trim().parse::<u64>().is_ok(), "{saved:?}");
    // Thawed afterwards: the writer moves on.
    let moved = worker
        .sh(
            id,
            &format!(
                "while [ \"$(cat /workspace/counter)\" = \"{}\" ]; do :; done; echo moved",
                saved.trim()
            ),
        )
        .await;
    assert_eq!(moved.stdout.trim(), "moved", "{moved:?}");
    let freezer_state = format!(
        "/sys/fs/cgroup/freezer/{}/{id}/freezer.state",
        worker.prefix
    );
    if std::path::Path::new(&freezer_state).exists() {
        assert_eq!(
            std::fs::read_to_string(&freezer_state)
                .expect("state")
                .trim(),
            "THAWED"
        );
    }
}
