//! An in-process platform for end-to-end tests and benches: a fresh PostgreSQL database, a bus
//! (in-process or the real NATS), one control-plane node with the gateway on a free loopback
//! port, one or more workers (netns runtime, sealing proxy, gRPC over mutual TLS with a
//! per-platform PKI), an org with an API key, and a local TLS origin playing an LLM API at
//! `api.llm.test`.
//!
//! Each caller passes its own netns prefix and address pool so tests can run in parallel; every
//! worker's host objects are reaped on drop, even when the test fails. Setup failures panic
//! with what was missing (root, PostgreSQL, nftables): this is test scaffolding.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use osb_bus::Bus;
use osb_gateway::ApiKey;
use osb_grpc::{pki, GrpcSecurity, GrpcSecurityConfig, PeerIdentity, PeerRole, TlsPaths};
use osb_placement::Capacity;
use osb_proto::OrgId;
use osb_store::Store;
use osb_testkit::{Canary, LlmOrigin, TestDatabase};
use osb_vault::{KeyringConfig, MasterKey, Vault};
use osb_worker::{ProxyOptions, WorkerNode, WorkerNodeConfig};
use serde_json::Value;

use super::Reap;
use crate::platform::{ControlNode, ControlNodeConfig};

/// The host the test origin plays.
pub const LLM_HOST: &str = "api.llm.test";

/// What a test needs to vary.
#[derive(Debug, Clone)]
pub struct PlatformOptions {
    /// Distinct per test: netns prefixes are `{prefix}a`, `{prefix}b`, …
    pub prefix: &'static str,
    /// Distinct per test (1-250): the third octet of worker pools (`100.{64+worker}.{n}.0/24`,
    /// inside 100.64.0.0/10) and of the origin's loopback address.
    pub number: u8,
    pub workers: usize,
    pub nats: bool,
    /// How long a silent worker takes to be lost, and the saga claim lease; `None` keeps the
    /// production defaults of `ControlNodeConfig` (the bench), tests shorten both.
    pub lost_after: Option<Duration>,
    pub lease: Option<Duration>,
    /// A bus of the test's own (a fault-injecting wrapper), used instead of `nats`.
    pub bus: Option<Arc<dyn Bus>>,
    /// How saga steps wait for command outcomes (tests of lost outcomes shorten it).
    pub commands: Option<osb_control::CommandTimings>,
    /// Workers also serve `runtime: "microvm"` (QEMU microvm, the guest from
    /// `scripts/build-guest.sh`), with the prefix `{prefix}{letter}v`.
    pub microvm: bool,
    /// Room per worker (sandboxes, CPUs, GiB of memory). Up to 64 the pool is a /24 (63
    /// addresses: slot 0 is never handed out); above, a /22 starting at `number` (which must
    /// then be a multiple of 4): 255 addresses.
    pub sandboxes_per_worker: u32,
}

impl PlatformOptions {
    pub fn new(prefix: &'static str, number: u8) -> Self {
        Self {
            prefix,
            number,
            workers: 1,
            nats: false,
            lost_after: Some(Duration::from_secs(3)),
            lease: Some(Duration::from_secs(5)),
            bus: None,
            commands: None,
            microvm: false,
            sandboxes_per_worker: 64,
        }
    }
}

/// The address pool of worker `index`: a /24 up to 64 sandboxes of room, else a /22.
fn pool_of(options: &PlatformOptions, index: usize) -> osb_vm::Ipv4Pool {
    let wide = options.sandboxes_per_worker > 64;
    assert!(
        !wide || options.number % 4 == 0,
        "a /22 pool needs `number` to be a multiple of 4"
    );
    format!(
        "100.{}.{}.0/{}",
        64 + index,
        options.number,
        if wide { 22 } else { 24 }
    )
    .parse()
    .expect("an address pool")
}

/// A running platform. Fields drop in order: nodes first, then the reaper and the database.
pub struct Platform {
    pub api_url: String,
    pub api_key: String,
    pub org: OrgId,
    pub store: Store,
    pub control: Option<ControlNode>,
    pub workers: Vec<WorkerNode>,
    worker_configs: Vec<WorkerNodeConfig>,
    bus: Arc<dyn Bus>,
    pub origin: LlmOrigin,
    pub canary: Canary,
    pub prefixes: Vec<(String, PathBuf)>,
    http: reqwest_lite::Client,
    _reap: Reap,
    pub database: TestDatabase,
    pub temp: tempfile::TempDir,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("api_url", &self.api_url)
            .field("org", &self.org)
            .finish_non_exhaustive()
    }
}

/// Starts a platform; the origin accepts only the canary as its key.
pub async fn start_platform(options: PlatformOptions) -> Platform {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let database = TestDatabase::postgres().await.expect("postgres");
    let store = database.migrated_store().await.expect("migrations");
    let canary = Canary::new("platform");
    let origin_ip = Ipv4Addr::new(127, 78, options.number, 9);
    let origin = LlmOrigin::start(
        LLM_HOST,
        SocketAddr::from((origin_ip, 443)),
        canary.value().to_owned(),
    )
    .await;
    let bus: Arc<dyn Bus> = if let Some(bus) = options.bus.clone() {
        bus
    } else if options.nats {
        osb_bus::connect_bus(Some("nats://127.0.0.1:4222"))
            .await
            .expect("nats")
    } else {
        Arc::new(osb_bus::InProcessBus::new())
    };

    let dev = pki::generate_dev_pki(&temp.path().join("pki")).expect("a dev PKI");
    let control_security =
        GrpcSecurity::load(&GrpcSecurityConfig::MutualTls(dev.control_tls())).expect("tls");
    // The reaper is armed before any worker starts, so a failed start leaves nothing either.
    let letters: Vec<char> = (0..options.workers)
        .map(|index| char::from(b'a' + u8::try_from(index).expect("fewer than 26 workers")))
        .collect();
    let prefixes: Vec<(String, PathBuf)> = letters
        .iter()
        .map(|letter| {
            (
                format!("{}{letter}", options.prefix),
                temp.path().join(format!("w{letter}")).join("sandboxes"),
            )
        })
        .collect();
    let reap = Reap(prefixes.clone());
    let mut workers = Vec::new();
    let mut worker_configs = Vec::new();
    for (index, letter) in letters.iter().enumerate() {
        let name = format!("w{letter}");
        let identity = PeerIdentity::new(PeerRole::Worker, &name).expect("worker identity");
        let certs = pki::issue(
            &temp.path().join("pki"),
            &identity,
            &["localhost".to_owned()],
            &temp.path().join("pki"),
            false,
        )
        .expect("worker certificate");
        let security = GrpcSecurity::load(&GrpcSecurityConfig::MutualTls(TlsPaths {
            ca: dev.ca_cert.clone(),
            cert: certs.cert,
            key: certs.key,
        }))
        .expect("tls");
        let prefix = format!("{}{letter}", options.prefix);
        let data_dir = temp.path().join(&name);
        let microvm = options
            .microvm
            .then(|| osb_vm::MicroVmConfig::new(format!("{prefix}v"), data_dir.join("microvm")));
        let config = WorkerNodeConfig {
            name: identity.worker_name().expect("a worker name"),
            data_dir,
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            security,
            netns_prefix: prefix,
            address_pool: Some(pool_of(&options, index)),
            proxy: ProxyOptions {
                resolve_overrides: HashMap::from([(LLM_HOST.to_owned(), IpAddr::V4(origin_ip))]),
                extra_upstream_ca_pems: vec![origin.ca_pem.clone().into_bytes()],
                allow_loopback: true,
                allow_private: false,
                skip_system_roots: true,
            },
            capacity: Capacity {
                sandboxes: options.sandboxes_per_worker,
                cpu_count: options.sandboxes_per_worker,
                memory_mb: u64::from(options.sandboxes_per_worker) * 1024,
            },
            heartbeat_every: Duration::from_millis(300),
            runtimes: osb_worker::RuntimeOptions {
                allow_development: false,
                microvm,
                sandbox_disk_mb: None,
                warm_pool: None,
            },
            abort_after_record: None,
        };
        let node = WorkerNode::start(config.clone(), bus.clone())
            .await
            .expect("worker starts (root, nftables)");
        worker_configs.push(config);
        workers.push(node);
    }

    let keyring = KeyringConfig {
        primary: MasterKey::generate(),
        retired: Vec::new(),
    };
    let vault = Vault::open(store.clone(), keyring).await.expect("vault");
    let mut config = ControlNodeConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        control_security.clone(),
    );
    if let Some(lost_after) = options.lost_after {
        config.lost_after = lost_after;
    }
    if let Some(lease) = options.lease {
        config.lease = lease;
    }
    if let Some(commands) = options.commands {
        config.commands = commands;
    }
    let control = ControlNode::start(config, vault, bus.clone())
        .await
        .expect("control node");
    let api_url = format!("http://{}", control.http_addrs()[0]);

    let org = store.create_org("acme").await.expect("org");
    let key = ApiKey::generate();
    store
        .insert_api_key(org.id, "test", &key.hash(), &key.display_prefix())
        .await
        .expect("api key");
    let platform = Platform {
        api_url,
        api_key: key.expose().to_owned(),
        org: org.id,
        store,
        control: Some(control),
        workers,
        worker_configs,
        bus,
        origin,
        canary,
        prefixes,
        http: reqwest_lite::Client,
        _reap: reap,
        database,
        temp,
    };
    platform.wait_for_workers(options.workers).await;
    platform
}

impl Platform {
    /// The control-plane node (until `stop`).
    pub fn control(&self) -> &ControlNode {
        self.control.as_ref().expect("the control node runs")
    }

    /// Waits until placement sees `count` live workers.
    pub async fn wait_for_workers(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let live = self
                .control
                .as_ref()
                .and_then(|control| control.service().plane().links.placement().cloned())
                .map_or(0, |placement| placement.live_worker_names().len());
            if live >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {live} of {count} workers live"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A REST call with the org's key: (status, JSON body or Null).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.http
            .call(&self.api_url, &self.api_key, method, path, body, &[])
            .await
    }

    /// A REST call with extra headers.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.http
            .call(&self.api_url, &self.api_key, method, path, body, headers)
            .await
    }

    /// Creates project `name` allowing the test origin, with the canary as `ANTHROPIC_API_KEY`.
    pub async fn project_with_key(&self, name: &str) {
        let (status, body) = self
            .call(
                "POST",
                "/api/projects",
                Some(serde_json::json!({ "name": name, "egressAllowlist": [LLM_HOST] })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = self
            .call(
                "PUT",
                &format!("/api/projects/{name}/secrets/ANTHROPIC_API_KEY"),
                Some(serde_json::json!({ "value": self.canary.value() })),
            )
            .await;
        assert!(status == 201 || status == 200, "{body}");
    }

    /// Runs a shell script in a sandbox through the API: (exit code, stdout, stderr).
    pub async fn sh(&self, sandbox: &str, script: &str) -> (i64, String, String) {
        let (status, body) = self
            .call(
                "POST",
                &format!("/api/sandboxes/{sandbox}/exec"),
                Some(serde_json::json!({ "cmd": ["sh", "-c", script], "timeoutSec": 60 })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        (
            body["exitCode"].as_i64().expect("exitCode"),
            body["stdout"].as_str().expect("stdout").to_owned(),
            body["stderr"].as_str().expect("stderr").to_owned(),
        )
    }

    /// `curl` from inside the sandbox to the origin with `$ANTHROPIC_API_KEY`: (http code, body).
    pub async fn curl_origin(&self, sandbox: &str) -> (String, String) {
        let script = format!(
            "curl -sS -m 20 -w '\\n%{{http_code}}' -X POST -H \"x-api-key: $ANTHROPIC_API_KEY\" https://{LLM_HOST}/v1/messages"
        );
        let (_, stdout, stderr) = self.sh(sandbox, &script).await;
        let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
        assert!(!code.is_empty(), "curl printed nothing: {stderr}");
        (code.trim().to_owned(), body.to_owned())
    }

    /// Restarts worker `index` as a new process would: same name, prefix, pool and data dir,
    /// a new worker id; its sandboxes do not survive (it reaps its prefix at start).
    pub async fn restart_worker(&mut self, index: usize) {
        let old = self.workers.remove(index);
        old.shutdown().await;
        let node = WorkerNode::start(self.worker_configs[index].clone(), self.bus.clone())
            .await
            .expect("worker restarts");
        let (name, id) = (node.name().clone(), node.id());
        self.workers.insert(index, node);
        // Placement learns the new process (its new id and address) from its first heartbeat;
        // until then the control plane still dials the old one.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self
                .control
                .as_ref()
                .and_then(|control| control.service().plane().links.placement().cloned())
                .and_then(|placement| placement.live_worker_named(&name))
                .is_some_and(|(live, _)| live == id);
            if seen {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "placement never saw the restarted worker {name}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the control plane and the workers (destroying their sandboxes).
    pub async fn stop(mut self) {
        if let Some(control) = self.control.take() {
            control.shutdown().await;
        }
        for worker in self.workers.drain(..) {
            worker.shutdown().await;
        }
    }
}

/// A minimal HTTP/1.1 JSON client over tokio (enough for tests; no extra dependency).
pub mod reqwest_lite {
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[derive(Debug, Default)]
    pub struct Client;

    impl Client {
        /// Like `call`, but `None` when the server closes the connection without an answer.
        pub async fn try_call(
            &self,
            base: &str,
            key: &str,
            method: &str,
            path: &str,
            body: Option<Value>,
        ) -> Option<(u16, Value)> {
            let (base, key, method, path) = (
                base.to_owned(),
                key.to_owned(),
                method.to_owned(),
                path.to_owned(),
            );
            tokio::spawn(async move { Client.call(&base, &key, &method, &path, body, &[]).await })
                .await
                .ok()
        }

        pub async fn call(
            &self,
            base: &str,
            key: &str,
            method: &str,
            path: &str,
            body: Option<Value>,
            headers: &[(&str, &str)],
        ) -> (u16, Value) {
            let authority = base.trim_start_matches("http://");
            let mut stream = tokio::net::TcpStream::connect(authority)
                .await
                .expect("the gateway accepts connections");
            let body = body.map(|b| b.to_string()).unwrap_or_default();
            let mut request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nX-API-Key: {key}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (name, value) in headers {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
            request.push_str("\r\n");
            request.push_str(&body);
            stream
                .write_all(request.as_bytes())
                .await
                .expect("request written");
            let mut response = Vec::new();
            stream
                .read_to_end(&mut response)
                .await
                .expect("response read");
            let text = String::from_utf8_lossy(&response).into_owned();
            let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok())
                .expect("an HTTP status line");
            let chunked = head
                .to_ascii_lowercase()
                .contains("transfer-encoding: chunked");
            let payload = if chunked {
                dechunk(rest)
            } else {
                rest.to_owned()
            };
            (
                status,
                serde_json::from_str(&payload).unwrap_or(Value::Null),
            )
        }
    }

    fn dechunk(mut text: &str) -> String {
        let mut out = String::new();
        while let Some((size, rest)) = text.split_once("\r\n") {
            let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                break;
            };
            if size == 0 || rest.len() < size {
                break;
            }
            out.push_str(&rest[..size]);
            text = rest[size..].trim_start_matches("\r\n");
        }
        out
    }
}
