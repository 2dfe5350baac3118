//! The distributed roles as real processes over NATS and PostgreSQL: two `osbd worker`s and one
//! `osbd control`. Sandboxes spread across both workers; a worker killed with SIGKILL is
//! detected and its sandboxes reported (`failed` with the reason, a `worker_lost` event); a
//! control plane aborted by a failpoint right after `boot_sandbox` (the kill -9 window) is
//! replaced by a fresh one that finishes the saga with no orphan; and a subscriber to `>` on
//! NATS for the whole run never sees the secret value.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use osb_grpc::{pki, PeerIdentity, PeerRole};
use osb_testkit::{Canary, LlmOrigin, TestDatabase};
use serde_json::{json, Value};

use crate::support::{free_port, spawn_osbd, Osbd, Reap};
use crate::{osbd, text};
use osbd::testkit::reqwest_lite::Client;
use osbd::testkit::LLM_HOST;

const PREFIX: &str = "osbk1";
const NATS: &str = "nats://127.0.0.1:4222";
static COMMAND_SPACE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("k{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));

/// `osbd` with `env` plus the NATS URL the distributed roles need.
fn spawn_ready(args: &[&str], env: &[(String, String)]) -> Osbd {
    spawn_ready_in(&COMMAND_SPACE, args, env)
}

/// `osbd` with `env`, the NATS URL, and its commands in the space `space`.
pub(crate) fn spawn_ready_in(space: &str, args: &[&str], env: &[(String, String)]) -> Osbd {
    let mut env = env.to_vec();
    env.push(("NATS_URL".to_owned(), NATS.to_owned()));
    // Commands of this run's workers in a space of their own (other runs share the server).
    env.push((osb_bus::COMMAND_SPACE_ENV.to_owned(), space.to_owned()));
    spawn_osbd(args, &env)
}

pub(crate) fn tls_env(ca: &Path, certs: &pki::CertPaths) -> Vec<(String, String)> {
    vec![
        ("OPENSANDBOX_GRPC_TLS_CA".into(), ca.display().to_string()),
        (
            "OPENSANDBOX_GRPC_TLS_CERT".into(),
            certs.cert.display().to_string(),
        ),
        (
            "OPENSANDBOX_GRPC_TLS_KEY".into(),
            certs.key.display().to_string(),
        ),
    ]
}

/// What every cluster test starts from: a fresh PostgreSQL database migrated with org `acme`
/// (and its API key), the test origin answering `LLM_HOST` with the canary as its key, a `>`
/// capture of everything on NATS, a PKI with the control plane's certificate, and the
/// environment every role shares.
pub(crate) struct ClusterBase {
    pub temp: tempfile::TempDir,
    pub canary: Canary,
    pub api_key: String,
    pub seen_on_nats: Arc<Mutex<Vec<u8>>>,
    /// The NATS capture; drop it before reading `seen_on_nats` for the last time.
    pub nats: tokio::task::JoinHandle<()>,
    origin_ip: Ipv4Addr,
    origin_ca: std::path::PathBuf,
    pki_dir: std::path::PathBuf,
    control_init: pki::PkiInit,
    base_env: Vec<(String, String)>,
    _origin: LlmOrigin,
    _database: TestDatabase,
}

impl ClusterBase {
    /// `canary` names the test's canary; `origin_octet` picks the origin's loopback address
    /// (`127.78.<octet>.9`, distinct per test).
    pub(crate) async fn start(canary: &str, origin_octet: u8) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let database = TestDatabase::postgres().await.unwrap();
        let canary = Canary::new(canary);
        let origin_ip = Ipv4Addr::new(127, 78, origin_octet, 9);
        let origin = LlmOrigin::start(
            LLM_HOST,
            SocketAddr::from((origin_ip, 443)),
            canary.value().to_owned(),
        )
        .await;
        let origin_ca = temp.path().join("origin-ca.pem");
        std::fs::write(&origin_ca, &origin.ca_pem).unwrap();
        // Everything that crosses NATS during the run.
        let seen_on_nats = Arc::new(Mutex::new(Vec::<u8>::new()));
        let nats = async_nats_free_subscriber(seen_on_nats.clone()).await;

        let pki_dir = temp.path().join("pki");
        let control_init = pki::init(&pki_dir, "cp1", false).unwrap();
        let master = text(&osbd(&["keys", "generate"], &[])).0.trim().to_owned();
        let base_env = vec![
            ("DATABASE_URL".to_owned(), database.url().to_owned()),
            ("OPENSANDBOX_SECRET_ENCRYPTION_KEY".to_owned(), master),
            (
                "OPENSANDBOX_DATA_DIR".to_owned(),
                temp.path().join("data").display().to_string(),
            ),
        ];
        let db_env: Vec<(&str, &str)> = base_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(osbd(&["migrate", "up"], &db_env).status.success());
        let api_key = text(&osbd(&["admin", "create-org", "acme"], &db_env))
            .0
            .lines()
            .find_map(|line| line.strip_prefix("api_key=").map(str::to_owned))
            .unwrap();
        Self {
            temp,
            canary,
            api_key,
            seen_on_nats,
            nats,
            origin_ip,
            origin_ca,
            pki_dir,
            control_init,
            base_env,
            _origin: origin,
            _database: database,
        }
    }

    /// The environment of worker `name`: its own certificate, the shared settings, and a proxy
    /// that resolves `LLM_HOST` to the test origin and trusts its CA; no warm pool.
    pub(crate) fn worker_env(&self, name: &str) -> Vec<(String, String)> {
        let identity = PeerIdentity::new(PeerRole::Worker, name).unwrap();
        let certs = pki::issue(
            &self.pki_dir,
            &identity,
            &["localhost".into()],
            &self.pki_dir,
            false,
        )
        .unwrap();
        let mut env = tls_env(&self.control_init.ca_cert, &certs);
        env.extend(self.base_env.iter().cloned());
        env.extend([
            (
                "OPENSANDBOX_PROXY_RESOLVE".to_owned(),
                format!("{LLM_HOST}={}", self.origin_ip),
            ),
            (
                "OPENSANDBOX_PROXY_EXTRA_CA".to_owned(),
                self.origin_ca.display().to_string(),
            ),
            (
                "OPENSANDBOX_PROXY_ALLOW_LOOPBACK".to_owned(),
                "1".to_owned(),
            ),
            // These tests count the worker's host objects exactly: no warm pool (ADR 0208).
            ("OPENSANDBOX_WARM_POOL".to_owned(), "0".to_owned()),
        ]);
        env
    }

    /// The environment of the control plane `cp1`.
    pub(crate) fn control_env(&self) -> Vec<(String, String)> {
        let mut env = tls_env(&self.control_init.ca_cert, &self.control_init.control);
        env.extend(self.base_env.iter().cloned());
        env
    }
}

/// Creates project `demo` allowing `LLM_HOST`, with the canary as `ANTHROPIC_API_KEY`.
pub(crate) async fn demo_project(api: &str, key: &str, canary: &Canary) {
    let (status, body) = Client
        .call(
            api,
            key,
            "POST",
            "/api/projects",
            Some(json!({ "name": "demo", "egressAllowlist": [LLM_HOST] })),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = Client
        .call(
            api,
            key,
            "PUT",
            "/api/projects/demo/secrets/ANTHROPIC_API_KEY",
            Some(json!({ "value": canary.value() })),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn two_workers_one_control_plane_over_nats() {
    let base = ClusterBase::start("cluster", 40).await;
    let (canary, api_key) = (&base.canary, base.api_key.clone());
    let mut reaps = Vec::new();
    let mut workers = Vec::new();
    for (index, name) in ["w1", "w2"].iter().enumerate() {
        let env = base.worker_env(name);
        let prefix = format!("{PREFIX}{index}");
        let data_dir = base.temp.path().join(name);
        reaps.push((prefix.clone(), data_dir.join("sandboxes")));
        let pool = format!("100.90.{index}.0/24");
        let process = spawn_ready(
            &[
                "worker",
                "--listen",
                "127.0.0.1:0",
                "--prefix",
                &prefix,
                "--pool",
                &pool,
                "--data-dir",
                &data_dir.display().to_string(),
            ],
            &env,
        );
        workers.push(process);
    }
    let _reap = Reap(reaps.clone());

    let mut control_env = base.control_env();
    control_env.push(("OPENSANDBOX_SAGA_LEASE_SECS".into(), "3".into()));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let control = spawn_ready(&["control", "--listen", &listen], &control_env);
    let api = format!("http://{listen}");
    let call = |method: &'static str, path: String, body: Option<Value>| {
        let (api, key) = (api.clone(), api_key.clone());
        async move { Client.call(&api, &key, method, &path, body, &[]).await }
    };

    demo_project(&api, &api_key, canary).await;

    // Wait for both workers to be live (placement needs a heartbeat from each).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut by_worker: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for _ in 0..4 {
        let (status, sandbox) = call(
            "POST",
            "/api/sandboxes".into(),
            Some(json!({ "project": "demo", "memoryMB": 256 })),
        )
        .await;
        assert_eq!(status, 201, "{sandbox}");
        by_worker
            .entry(sandbox["workerID"].as_str().unwrap().to_owned())
            .or_default()
            .push(sandbox["sandboxID"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        by_worker.len(),
        2,
        "spread over both workers: {by_worker:?}"
    );
    for sandboxes in by_worker.values() {
        let (status, out) = call(
            "POST",
            format!("/api/sandboxes/{}/exec", sandboxes[0]),
            Some(json!({ "cmd": ["sh", "-c", format!("curl -sS -m 20 -o /dev/null -w '%{{http_code}}' -X POST -H \"x-api-key: $ANTHROPIC_API_KEY\" https://{LLM_HOST}/v1/messages")] })),
        )
        .await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["stdout"], "200", "{out}");
    }

    // Kill worker w2: it is detected and its sandboxes reported.
    drop(workers.pop());
    let lost = &by_worker["w2"];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, sandbox) = call("GET", format!("/api/sandboxes/{}", lost[0]), None).await;
        if sandbox["status"] == "failed" {
            assert!(
                sandbox["failureReason"].as_str().unwrap().contains("w2"),
                "{sandbox}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lost worker was not reported: {sandbox}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // New sandboxes go to the surviving worker.
    let (status, sandbox) = call(
        "POST",
        "/api/sandboxes".into(),
        Some(json!({ "project": "demo" })),
    )
    .await;
    assert_eq!(status, 201, "{sandbox}");
    assert_eq!(sandbox["workerID"], "w1");

    // kill -9 of the control plane right after boot_sandbox, then a fresh control plane.
    drop(control);
    let mut crashing_env = control_env.clone();
    crashing_env.push((
        "OPENSANDBOX_FAILPOINT".into(),
        "crash_after:boot_sandbox".into(),
    ));
    let mut crashing = spawn_ready(&["control", "--listen", &listen], &crashing_env);
    let request = Client
        .try_call(
            &api,
            &api_key,
            "POST",
            "/api/sandboxes",
            Some(json!({ "project": "demo" })),
        )
        .await;
    assert!(
        request.is_none(),
        "the aborted control plane answered: {request:?}"
    );
    let status = crashing.child.wait().unwrap();
    assert!(!status.success(), "the failpoint aborted the process");
    let _restarted = spawn_ready(&["control", "--listen", &listen], &control_env);
    let deadline = Instant::now() + Duration::from_secs(40);
    let resolved = loop {
        let (_, list) = call("GET", "/api/sandboxes".into(), None).await;
        let creating: Vec<&Value> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "creating")
            .collect();
        if creating.is_empty() && list.as_array().unwrap().len() == 6 {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "the interrupted create never ended: {list}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Whatever the outcome, w1 runs exactly the sandboxes the database says run there.
    let running_on_w1 = resolved
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["workerID"] == "w1" && s["status"] == "running")
        .count();
    let census = osb_vm::netns::census_worker(&reaps[0].0, &reaps[0].1)
        .await
        .unwrap();
    assert_eq!(
        census.netns, running_on_w1,
        "no orphan namespace: {census:?}"
    );

    // Clean up through the API, then check NATS never carried the value.
    for sandbox in resolved.as_array().unwrap() {
        let id = sandbox["sandboxID"].as_str().unwrap();
        let (status, body) = call("DELETE", format!("/api/sandboxes/{id}"), None).await;
        assert_eq!(status, 200, "{body}");
    }
    let census = osb_vm::netns::census_worker(&reaps[0].0, &reaps[0].1)
        .await
        .unwrap();
    assert!(census.is_empty(), "{census:?}");
    drop(base.nats);
    delete_command_space(&COMMAND_SPACE).await;
    let seen = base.seen_on_nats.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the subscriber saw the run's traffic");
    let seen_text = String::from_utf8_lossy(&seen);
    for event in [
        ".created",
        ".secret_used",
        ".worker_lost",
        ".destroyed",
        "secret_updated",
        ".heartbeat",
    ] {
        assert!(seen_text.contains(event), "no {event} event crossed NATS");
    }
    assert!(
        canary.found_in_bytes(&seen).is_empty(),
        "a secret value crossed NATS"
    );
}

/// Subscribes to `>` on NATS through the bus and appends every subject and payload.
pub(crate) async fn async_nats_free_subscriber(
    sink: Arc<Mutex<Vec<u8>>>,
) -> tokio::task::JoinHandle<()> {
    let bus = osb_bus::connect_bus(Some(NATS)).await.unwrap();
    let mut all = bus.subscribe(">").await.unwrap();
    bus.flush().await.unwrap();
    tokio::spawn(async move {
        let _bus = bus;
        while let Some(message) = all.next().await {
            let mut sink = sink.lock().unwrap();
            sink.extend_from_slice(message.subject.as_bytes());
            sink.extend_from_slice(&message.payload);
            for (name, value) in &message.headers {
                sink.extend_from_slice(name.as_bytes());
                sink.extend_from_slice(value.as_bytes());
            }
        }
    })
}

/// Removes the run's scoped command stream from the shared server.
pub(crate) async fn delete_command_space(tag: &str) {
    let settings = osb_bus::command::CommandSettings {
        space: osb_bus::command::CommandSpace::scoped(tag).unwrap(),
        ..Default::default()
    };
    let bus = osb_bus::NatsBus::connect("nats://127.0.0.1:4222")
        .await
        .unwrap()
        .with_command_settings(settings);
    bus.delete_command_stream().await.unwrap();
}
