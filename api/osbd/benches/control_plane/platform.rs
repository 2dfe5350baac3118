//! The bench's in-process platform (after `api/tests/it/platform.rs`, which benches cannot
//! import): a fresh PostgreSQL database, the in-process bus, one worker `wa` (netns runtime,
//! sealing proxy, gRPC over mutual TLS with a per-run PKI), one control node with the gateway
//! on a free loopback port, an org with an API key, and a local TLS origin playing an LLM API.
//!
//! Host objects use the prefix `osbbea` and the pool `100.120.0.0/24`; `Reap` removes them on
//! drop, also when the bench panics.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use osb_api::gateway::ApiKey;
use osb_api::grpc::{pki, GrpcSecurity, GrpcSecurityConfig, PeerIdentity, PeerRole, TlsPaths};
use osb_api::platform::{ControlNode, ControlNodeConfig};
use osb_api::worker::{ProxyOptions, WorkerNode, WorkerNodeConfig};
use osb_bus::Bus;
use osb_placement::Capacity;
use osb_proto::OrgId;
use osb_store::Store;
use osb_testkit::{LlmOrigin, TestDatabase};
use osb_vault::{KeyringConfig, MasterKey, Vault};

/// The host the origin plays.
pub const LLM_HOST: &str = "api.llm.test";
/// The worker's netns prefix (distinct from every test's).
pub const PREFIX: &str = "osbbea";
/// The worker's name (the name in its certificate).
pub const WORKER: &str = "wa";
const POOL: &str = "100.120.0.0/24";
const ORIGIN_IP: Ipv4Addr = Ipv4Addr::new(127, 78, 120, 9);

/// Reaps the worker's host objects when dropped.
pub struct Reap {
    pub data_dir: PathBuf,
}

impl Drop for Reap {
    fn drop(&mut self) {
        let data_dir = self.data_dir.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|runtime| runtime.block_on(osb_vm::netns::reap_worker(PREFIX, &data_dir)))
        })
        .join();
    }
}

/// A running platform. Fields drop in order: nodes first, then the database.
pub struct BenchPlatform {
    pub api_url: String,
    pub api_key: String,
    pub org: OrgId,
    pub store: Store,
    pub control: Option<ControlNode>,
    pub worker: Option<WorkerNode>,
    pub origin: LlmOrigin,
    pub database: TestDatabase,
    pub _temp: tempfile::TempDir,
}

/// Starts the platform; the origin first accepts `initial_key`. The worker's sandboxes dir is
/// `temp/wa/sandboxes`, which `reap_dir` returns before anything is started.
pub async fn start(temp: tempfile::TempDir, initial_key: &str) -> BenchPlatform {
    let database = TestDatabase::postgres()
        .await
        .expect("a PostgreSQL database (scripts/services.sh starts the server)");
    let store = database.migrated_store().await.expect("migrations");
    let origin = LlmOrigin::start(
        LLM_HOST,
        SocketAddr::from((ORIGIN_IP, 443)),
        initial_key.to_owned(),
    )
    .await;
    let bus: Arc<dyn Bus> = Arc::new(osb_bus::InProcessBus::new());

    let pki_dir = temp.path().join("pki");
    let dev = pki::generate_dev_pki(&pki_dir).expect("dev pki");
    let control_security =
        GrpcSecurity::load(&GrpcSecurityConfig::MutualTls(dev.control_tls())).expect("tls");
    let identity = PeerIdentity::new(PeerRole::Worker, WORKER).expect("worker identity");
    let certs = pki::issue(
        &pki_dir,
        &identity,
        &["localhost".to_owned()],
        &pki_dir,
        false,
    )
    .expect("worker certificate");
    let worker_security = GrpcSecurity::load(&GrpcSecurityConfig::MutualTls(TlsPaths {
        ca: dev.ca_cert.clone(),
        cert: certs.cert,
        key: certs.key,
    }))
    .expect("tls");
    let worker = WorkerNode::start(
        WorkerNodeConfig {
            name: WORKER.to_owned(),
            data_dir: temp.path().join(WORKER),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            security: worker_security,
            netns_prefix: PREFIX.to_owned(),
            address_pool: Some(POOL.parse().expect("pool")),
            proxy: ProxyOptions {
                resolve_overrides: HashMap::from([(LLM_HOST.to_owned(), IpAddr::V4(ORIGIN_IP))]),
                extra_upstream_ca_pems: vec![origin.ca_pem.clone().into_bytes()],
                allow_loopback: true,
                allow_private: false,
                skip_system_roots: true,
            },
            capacity: Capacity {
                sandboxes: 64,
                cpu_count: 64,
                memory_mb: 64 * 1024,
            },
            heartbeat_every: Duration::from_millis(300),
        },
        bus.clone(),
    )
    .await
    .expect("the worker starts (root, nftables)");

    let keyring = KeyringConfig {
        primary: MasterKey::generate(),
        retired: Vec::new(),
    };
    let vault = Vault::open(store.clone(), keyring).await.expect("vault");
    let config = ControlNodeConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), control_security);
    let control = ControlNode::start(config, vault, bus)
        .await
        .expect("control node");
    let api_url = format!("http://{}", control.http_addrs()[0]);

    let org = store.create_org("bench").await.expect("org");
    let key = ApiKey::generate();
    store
        .insert_api_key(org.id, "bench", &key.hash(), &key.display_prefix())
        .await
        .expect("api key");
    let platform = BenchPlatform {
        api_url,
        api_key: key.expose().to_owned(),
        org: org.id,
        store,
        control: Some(control),
        worker: Some(worker),
        origin,
        database,
        _temp: temp,
    };
    platform.wait_for_worker().await;
    platform
}

/// Where the worker of a platform started in `temp` keeps its sandboxes (for `Reap`).
pub fn reap_dir(temp: &tempfile::TempDir) -> PathBuf {
    temp.path().join(WORKER).join("sandboxes")
}

impl BenchPlatform {
    pub fn control(&self) -> &ControlNode {
        self.control.as_ref().expect("the control node runs")
    }

    async fn wait_for_worker(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self
            .control()
            .service()
            .plane()
            .links
            .placement()
            .map_or(0, |placement| placement.live_worker_names().len())
            == 0
        {
            assert!(Instant::now() < deadline, "the worker never heartbeated");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A REST call with the org's key.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        super::http::call(&self.api_url, &self.api_key, method, path, body.as_ref()).await
    }

    /// Creates project `name` allowing the origin, with `value` as `ANTHROPIC_API_KEY`.
    pub async fn project_with_key(&self, name: &str, value: &str) {
        let (status, body) = self
            .call(
                "POST",
                "/api/projects",
                Some(serde_json::json!({ "name": name, "egressAllowlist": [LLM_HOST] })),
            )
            .await;
        assert_eq!(status, 201, "project create: {body}");
        let (status, body) = self
            .call(
                "PUT",
                &format!("/api/projects/{name}/secrets/ANTHROPIC_API_KEY"),
                Some(serde_json::json!({ "value": value })),
            )
            .await;
        assert_eq!(status, 201, "secret set: {body}");
    }

    /// Stops the control plane and the worker (which destroys its sandboxes).
    pub async fn stop(&mut self) {
        if let Some(control) = self.control.take() {
            control.shutdown().await;
        }
        if let Some(worker) = self.worker.take() {
            worker.shutdown().await;
        }
    }
}
