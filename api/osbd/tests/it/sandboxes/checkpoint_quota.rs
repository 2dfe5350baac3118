//! The checkpoint-bytes quota through the REST API on a real netns worker (ADR 0032): a
//! checkpoint under the quota succeeds and reports its measured `sizeBytes`; one that would
//! pass it is refused with a 409 naming the quota, the bytes used and what to do, and leaves
//! nothing (no row, no layer under the worker's checkpoint store) — for checkpoints and golden
//! snapshots alike; an org already at its quota is refused before the worker writes; deleting
//! a checkpoint frees its bytes; and concurrent checkpoints never together pass the quota.

use std::collections::BTreeSet;
use std::path::PathBuf;

use osb_proto::{CheckpointId, SandboxId};
use osb_store::OrgQuotas;
use serde_json::{json, Value};

use osbd::testkit::{start_platform, Platform, PlatformOptions};

/// What the sandbox writes before each checkpoint: incompressible, so its size on disk is
/// its length whatever the filesystem.
const BLOB_BYTES: u64 = 2 * 1024 * 1024;

async fn set_quota(platform: &Platform, bytes: Option<u64>) {
    platform
        .store
        .set_org_quotas(
            platform.org,
            OrgQuotas {
                checkpoint_bytes: bytes,
                ..OrgQuotas::default()
            },
        )
        .await
        .expect("quota");
}

/// The checkpoint directories on the (only) worker's disk.
fn layers_on_disk(platform: &Platform) -> BTreeSet<String> {
    let store: PathBuf = platform.prefixes[0].1.join("checkpoints");
    match std::fs::read_dir(&store) {
        Ok(entries) => entries
            .map(|entry| {
                entry
                    .expect("a directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
        Err(error) => panic!("reading {}: {error}", store.display()),
    }
}

/// The checkpoint rows of the sandbox, by id.
async fn rows(platform: &Platform, sandbox: SandboxId) -> BTreeSet<String> {
    platform
        .store
        .list_checkpoints(platform.org, sandbox)
        .await
        .expect("rows")
        .into_iter()
        .map(|record| record.id.to_string())
        .collect()
}

/// Asserts a refusal is the quota's 409 with everything the caller needs to act.
fn assert_quota_refusal(status: u16, answer: &Value) {
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("conflict")),
        "{answer}"
    );
    let message = answer["error"].as_str().unwrap_or_default();
    for part in [
        "the org's quota is",
        "bytes of checkpoints",
        "hold",
        "delete checkpoints or snapshots",
        "--max-checkpoint-mb",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoint_bytes_are_measured_bounded_and_freed_through_rest() {
    let platform = start_platform(PlatformOptions::new("osbq1", 171)).await;
    let (status, sandbox) = platform
        .call("POST", "/api/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, 201, "{sandbox}");
    let id = sandbox["sandboxID"].as_str().expect("id").to_owned();
    let sandbox_id: SandboxId = id.parse().expect("a sandbox id");
    let (code, _, stderr) = platform
        .sh(
            &id,
            &format!("head -c {BLOB_BYTES} /dev/urandom > /workspace/blob && sync"),
        )
        .await;
    assert_eq!(code, 0, "{stderr}");
    let checkpoints = format!("/api/sandboxes/{id}/checkpoints");

    // Under the quota (none yet): the checkpoint reports what it takes on disk.
    let (status, first) = platform.call("POST", &checkpoints, None).await;
    assert_eq!(status, 201, "{first}");
    let size = first["sizeBytes"].as_u64().expect("sizeBytes");
    assert!(
        (BLOB_BYTES..BLOB_BYTES + 1024 * 1024).contains(&size),
        "{size} bytes for a layer holding {BLOB_BYTES}"
    );
    let (_, listed) = platform.call("GET", &checkpoints, None).await;
    assert_eq!(listed[0]["sizeBytes"], size, "{listed}");
    let first_id = first["checkpointID"].as_str().expect("id").to_owned();
    assert_eq!(
        layers_on_disk(&platform),
        BTreeSet::from([first_id.clone()])
    );

    // Room for one more byte than a megabyte: the next checkpoint is written, measured, refused
    // at the record, and unwound — no row, no layer.
    set_quota(&platform, Some(size + 1024 * 1024)).await;
    let (status, refused) = platform.call("POST", &checkpoints, None).await;
    assert_quota_refusal(status, &refused);
    let message = refused["error"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("hold {size} bytes")), "{message}");
    assert!(message.contains("would make it"), "{message}");
    let (status, refused_snapshot) = platform
        .call(
            "POST",
            "/api/snapshots",
            Some(json!({ "name": "too-big", "sandboxID": id })),
        )
        .await;
    assert_quota_refusal(status, &refused_snapshot);
    let (_, snapshots) = platform.call("GET", "/api/snapshots", None).await;
    assert_eq!(snapshots, json!([]), "no snapshot row");
    assert_eq!(
        rows(&platform, sandbox_id).await,
        BTreeSet::from([first_id.clone()])
    );
    assert_eq!(
        layers_on_disk(&platform),
        BTreeSet::from([first_id.clone()])
    );

    // At the quota: refused before the worker is asked to write.
    set_quota(&platform, Some(size)).await;
    let (status, at_quota) = platform.call("POST", &checkpoints, None).await;
    assert_quota_refusal(status, &at_quota);
    let message = at_quota["error"].as_str().unwrap_or_default();
    assert!(message.contains("already hold"), "{message}");
    assert_eq!(
        layers_on_disk(&platform),
        BTreeSet::from([first_id.clone()])
    );

    // Deleting the checkpoint frees its bytes: the next one fits again.
    let (status, _) = platform
        .call("DELETE", &format!("{checkpoints}/{first_id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        platform
            .store
            .checkpoint_bytes(platform.org)
            .await
            .expect("bytes")
            .used,
        0
    );
    assert!(layers_on_disk(&platform).is_empty());
    set_quota(&platform, Some(size + 1024 * 1024)).await;
    let (status, again) = platform.call("POST", &checkpoints, None).await;
    assert_eq!(status, 201, "{again}");
    let (status, _) = platform
        .call(
            "DELETE",
            &format!(
                "{checkpoints}/{}",
                again["checkpointID"].as_str().expect("id")
            ),
            None,
        )
        .await;
    assert_eq!(status, 204);

    // Concurrent checkpoints: room for two and a half; exactly two are kept, the others are
    // refused and unwound, and the disk holds exactly the kept ones.
    set_quota(&platform, Some(size * 5 / 2)).await;
    let attempts: Vec<_> = (0..4)
        .map(|_| {
            let (url, key, path) = (
                platform.api_url.clone(),
                platform.api_key.clone(),
                checkpoints.clone(),
            );
            tokio::spawn(async move {
                osbd::testkit::reqwest_lite::Client
                    .call(&url, &key, "POST", &path, None, &[])
                    .await
            })
        })
        .collect();
    let mut kept = BTreeSet::new();
    for attempt in attempts {
        let (status, answer) = attempt.await.expect("request task");
        if status == 201 {
            kept.insert(answer["checkpointID"].as_str().expect("id").to_owned());
        } else {
            assert_quota_refusal(status, &answer);
        }
    }
    assert_eq!(
        kept.len(),
        2,
        "two checkpoints fit in 2.5 of them: {kept:?}"
    );
    let bytes = platform
        .store
        .checkpoint_bytes(platform.org)
        .await
        .expect("bytes");
    assert!(bytes.used <= size * 5 / 2, "{bytes:?}");
    assert_eq!(rows(&platform, sandbox_id).await, kept);
    assert_eq!(layers_on_disk(&platform), kept);

    // A golden snapshot records its checkpoint's size; deleting it frees the bytes.
    set_quota(&platform, None).await;
    let (status, snapshot) = platform
        .call(
            "POST",
            "/api/snapshots",
            Some(json!({ "name": "golden-q", "sandboxID": id })),
        )
        .await;
    assert_eq!(status, 201, "{snapshot}");
    assert!(
        snapshot["sizeBytes"]
            .as_u64()
            .is_some_and(|bytes| bytes >= BLOB_BYTES),
        "{snapshot}"
    );
    let used_with_snapshot = platform
        .store
        .checkpoint_bytes(platform.org)
        .await
        .expect("bytes")
        .used;
    let (status, _) = platform
        .call("DELETE", "/api/snapshots/golden-q", None)
        .await;
    assert_eq!(status, 204);
    let snapshot_checkpoint: CheckpointId = snapshot["checkpointID"]
        .as_str()
        .expect("id")
        .parse()
        .expect("a checkpoint id");
    assert!(!layers_on_disk(&platform).contains(&snapshot_checkpoint.to_string()));
    assert_eq!(
        platform
            .store
            .checkpoint_bytes(platform.org)
            .await
            .expect("bytes")
            .used,
        used_with_snapshot - snapshot["sizeBytes"].as_u64().unwrap_or(0)
    );

    let (status, _) = platform
        .call("DELETE", &format!("/api/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, 200);
    platform.stop().await;
}
