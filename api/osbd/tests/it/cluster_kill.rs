//! kill -9 of a worker between executing a saga command and publishing its outcome (issue 13
//! item 3, ADR 0021), with `osbd control` and `osbd worker` as real processes over NATS and
//! PostgreSQL. The test build's failpoint (`worker_abort_after:<step>`) makes the worker abort
//! once the command's effect ran and its record is on disk, before the outcome is published or
//! the command acknowledged; the worker is then started again with the same name and data dir.
//!
//! * After `boot_sandbox`: the restarted worker reaps the sandbox (ADR 0204) and answers the
//!   redelivered boot from its record without booting again — with a failure, since it no
//!   longer holds the sandbox — so the create unwinds with nothing left; the next create runs
//!   and its exec reaches the origin through the proxy.
//! * After the destroy saga's `destroy_sandbox`: the restarted worker answers from its record
//!   (the sandbox existed) and the destroy completes, although the sandbox was meanwhile
//!   reported failed with its worker.
//!
//! Its name ends in `over_nats` so nextest runs it alone among the tests whose workers
//! heartbeat on the shared server (`.config/nextest.toml`): the cluster test names a worker
//! `w1` too.
//!
//! At the end no namespace, veth, nft table, cgroup, mount or directory with the test's prefix
//! is left, no saga is unfinished, every row is destroyed, and the canary secret was never on
//! NATS, in a worker's log or in a command record.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster::{delete_command_space, demo_project, spawn_ready_in, ClusterBase};
use crate::support::{free_port, Osbd, Reap};
use osbd::testkit::reqwest_lite::Client;
use osbd::testkit::LLM_HOST;

const PREFIX: &str = "osbkw1";
/// `abort()` raises SIGABRT (6 on Linux).
const SIGABRT: i32 = 6;
static SPACE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("kw{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));

/// Waits (without blocking the runtime: the REST calls in flight need it) for `worker` to exit.
async fn exit_of(worker: &mut Osbd, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the armed worker did not abort; its log:\n{}",
            worker.logs.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The log lines of `worker` that mention the command of `step_action` (`boot_sandbox:do`).
fn lines_about(worker: &Osbd, step_action: &str, what: &str) -> Vec<String> {
    let needle = format!(":{step_action}");
    worker
        .logs
        .lock()
        .unwrap()
        .lines()
        .filter(|line| line.contains(what) && line.contains(&needle))
        .map(str::to_owned)
        .collect()
}

/// The command records in `dir` whose key names `step_action` (the `:` of a key is `%3a`).
fn records_of(dir: &Path, step_action: &str) -> Vec<Vec<u8>> {
    let needle = format!("%3a{}.json", step_action.replace(':', "%3a"));
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(&needle))
        .map(|path| std::fs::read(path).unwrap())
        .collect()
}

#[tokio::test]
async fn a_worker_killed_between_recording_and_publishing_leaves_nothing_behind_over_nats() {
    let base = ClusterBase::start("killworker", 41).await;
    let (canary, api_key) = (&base.canary, base.api_key.clone());

    // One worker, started three times with the same name, certificate and data dir.
    let data_dir = base.temp.path().join("w1");
    let sandboxes_dir = data_dir.join("sandboxes");
    let records_dir = data_dir.join("commands");
    let _reap = Reap(vec![(PREFIX.to_owned(), sandboxes_dir.clone())]);
    let mut worker_env = base.worker_env("w1");
    worker_env.extend([
        // The runner's info lines say which commands ran and which were answered from records.
        ("OSB_LOG".to_owned(), "warn,osb_worker=info".to_owned()),
        ("NO_COLOR".to_owned(), "1".to_owned()),
    ]);
    let data_dir_arg = data_dir.display().to_string();
    let start_worker = |failpoint: Option<&str>| {
        let mut env = worker_env.clone();
        if let Some(failpoint) = failpoint {
            env.push(("OPENSANDBOX_FAILPOINT".to_owned(), failpoint.to_owned()));
        }
        spawn_ready_in(
            &SPACE,
            &[
                "worker",
                "--listen",
                "127.0.0.1:0",
                "--prefix",
                PREFIX,
                "--pool",
                "100.91.0.0/24",
                "--data-dir",
                &data_dir_arg,
            ],
            &env,
        )
    };
    let mut first = start_worker(Some("worker_abort_after:boot_sandbox"));

    let control_env = base.control_env();
    let listen = format!("127.0.0.1:{}", free_port());
    let control = spawn_ready_in(&SPACE, &["control", "--listen", &listen], &control_env);
    let api = format!("http://{listen}");
    let call = |method: &'static str, path: String, body: Option<Value>| {
        let (api, key) = (api.clone(), api_key.clone());
        async move { Client.call(&api, &key, method, &path, body, &[]).await }
    };
    demo_project(&api, &api_key, canary).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. The worker dies after booting and recording, before publishing.
    let create = tokio::spawn(call(
        "POST",
        "/api/sandboxes".into(),
        Some(json!({ "project": "demo", "memoryMB": 256 })),
    ));
    let died = exit_of(&mut first, Duration::from_secs(60)).await;
    assert_eq!(
        died.signal(),
        Some(SIGABRT),
        "aborted by the failpoint: {died:?}"
    );
    let census = osb_vm::netns::census_worker(PREFIX, &sandboxes_dir)
        .await
        .unwrap();
    assert_eq!(census.netns, 1, "the boot ran before the abort: {census:?}");
    assert_eq!(
        records_of(&records_dir, "boot_sandbox:do").len(),
        1,
        "the boot's outcome was recorded before the abort"
    );
    let mut second = start_worker(Some("worker_abort_after:destroy_sandbox"));
    let (status, body) = create.await.unwrap();
    assert_ne!(
        status, 201,
        "a sandbox the worker reaped was reported created: {body}"
    );
    assert!(
        body.to_string().contains("no longer holds it"),
        "the failure says why: {body}"
    );
    let answered = lines_about(&second, "boot_sandbox:do", "answered from its record");
    assert!(
        !answered.is_empty(),
        "the redelivered boot was not answered from the record"
    );
    assert!(
        lines_about(&second, "boot_sandbox:do", "executing command").is_empty(),
        "the boot ran twice: {answered:?}"
    );
    let (_, list) = call("GET", "/api/sandboxes".into(), None).await;
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    let unwound = list[0]["sandboxID"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["status"], "failed", "{list:?}");
    let census = osb_vm::netns::census_worker(PREFIX, &sandboxes_dir)
        .await
        .unwrap();
    assert!(census.is_empty(), "the unwound create left {census:?}");

    // The restarted worker runs the next sandbox, and its exec goes through the proxy.
    let (status, sandbox) = call(
        "POST",
        "/api/sandboxes".into(),
        Some(json!({ "project": "demo", "memoryMB": 256 })),
    )
    .await;
    assert_eq!(status, 201, "{sandbox}");
    assert_eq!(sandbox["status"], "running", "{sandbox}");
    let running = sandbox["sandboxID"].as_str().unwrap().to_owned();
    let (status, out) = call(
        "POST",
        format!("/api/sandboxes/{running}/exec"),
        Some(json!({ "cmd": ["sh", "-c", format!("curl -sS -m 20 -o /dev/null -w '%{{http_code}}' -X POST -H \"x-api-key: $ANTHROPIC_API_KEY\" https://{LLM_HOST}/v1/messages")] })),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["stdout"], "200",
        "the sealed key was substituted: {out}"
    );

    // 2. The worker dies after destroying and recording, before publishing.
    let destroy = tokio::spawn(call("DELETE", format!("/api/sandboxes/{running}"), None));
    let died = exit_of(&mut second, Duration::from_secs(60)).await;
    assert_eq!(
        died.signal(),
        Some(SIGABRT),
        "aborted by the failpoint: {died:?}"
    );
    assert_eq!(records_of(&records_dir, "destroy_sandbox:do").len(), 1);
    let third = start_worker(None);
    let (status, body) = destroy.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "destroyed", "{body}");
    let answered = lines_about(&third, "destroy_sandbox:do", "answered from its record");
    assert!(
        answered.iter().any(|line| line.contains("done=true")),
        "the redelivered destroy was not answered from the record: {answered:?}"
    );
    assert!(lines_about(&third, "destroy_sandbox:do", "executing command").is_empty());

    // The unwound sandbox is destroyed through the API too; then nothing is left anywhere.
    let (status, body) = call("DELETE", format!("/api/sandboxes/{unwound}"), None).await;
    assert_eq!(status, 200, "{body}");
    for id in [&unwound, &running] {
        let (_, sandbox) = call("GET", format!("/api/sandboxes/{id}"), None).await;
        assert_eq!(sandbox["status"], "destroyed", "{sandbox}");
    }
    let (status, sagas) = call("GET", "/api/sagas".into(), None).await;
    assert_eq!(status, 200, "{sagas}");
    assert_eq!(sagas, json!([]), "every saga ended");
    let census = osb_vm::netns::census_worker(PREFIX, &sandboxes_dir)
        .await
        .unwrap();
    assert!(census.is_empty(), "{census:?}");
    // Sessions live in the worker process: the dead ones took theirs, and the last one
    // registered none.
    assert!(
        lines_about(&third, "register_session:do", "executing command").is_empty(),
        "the last worker registered a session"
    );

    // The canary: never on NATS, in a worker's log or in a command record.
    let logs_of_all: Vec<String> = [&first, &second, &third]
        .iter()
        .map(|worker| worker.logs.lock().unwrap().clone())
        .collect();
    drop(control);
    drop(third);
    drop(base.nats);
    delete_command_space(&SPACE).await;
    let seen = base.seen_on_nats.lock().unwrap().clone();
    let seen_text = String::from_utf8_lossy(&seen);
    assert!(
        seen_text.contains(".boot_sandbox."),
        "the subscriber saw the run's traffic"
    );
    assert!(
        canary.found_in_bytes(&seen).is_empty(),
        "a secret value crossed NATS"
    );
    for logs in &logs_of_all {
        assert!(
            canary.found_in_bytes(logs.as_bytes()).is_empty(),
            "a secret value in a log"
        );
    }
    for entry in std::fs::read_dir(&records_dir).unwrap() {
        let record = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            canary.found_in_bytes(&record).is_empty(),
            "a secret value in a record"
        );
    }
}
