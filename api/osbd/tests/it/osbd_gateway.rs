//! `osbd gateway` as a real process: it serves health and the API over real HTTP with a key
//! from `osbd admin create-org`, and refuses requests without one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use osb_testkit::TestDatabase;

use crate::{osbd, text};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(port: u16, request: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// A running `osbd gateway` on a fresh database with an org; killed on drop.
pub(crate) struct RunningGateway {
    _child: KillOnDrop,
    _database: TestDatabase,
    pub port: u16,
    pub api_key: String,
}

/// Migrates a fresh PostgreSQL database, creates org `acme`, starts `osbd gateway` and waits
/// until it answers `/healthz`.
pub(crate) async fn start_gateway() -> RunningGateway {
    let database = TestDatabase::postgres().await.expect("db");
    let key = osbd(&["keys", "generate"], &[]);
    let master = text(&key).0.trim().to_owned();
    let env = [
        ("DATABASE_URL", database.url()),
        ("OPENSANDBOX_SECRET_ENCRYPTION_KEY", master.as_str()),
    ];
    assert!(osbd(&["migrate", "up"], &env).status.success());
    let created = osbd(&["admin", "create-org", "acme"], &env);
    let api_key = text(&created)
        .0
        .lines()
        .find_map(|line| line.strip_prefix("api_key=").map(str::to_owned))
        .expect("api key printed");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_osbd"))
        .args(["gateway", "--listen", &format!("127.0.0.1:{port}")])
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("osbd gateway starts");
    let child = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(response) = http(
            port,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ) {
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not answer within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    RunningGateway {
        _child: child,
        _database: database,
        port,
        api_key,
    }
}

#[tokio::test]
async fn the_gateway_serves_the_api_over_http() {
    let gateway = start_gateway().await;
    let (port, api_key) = (gateway.port, gateway.api_key.clone());

    let body = r#"{"name":"web","egressAllowlist":["api.example.test"]}"#;
    let create = format!(
        "POST /api/projects HTTP/1.1\r\nHost: x\r\nX-API-Key: {api_key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let response = http(port, &create).expect("response");
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(
        response.contains("\"egressAllowlist\":[\"api.example.test\"]"),
        "{response}"
    );

    let anonymous = http(
        port,
        "GET /api/projects HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("response");
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    assert!(anonymous.contains("missing_api_key"), "{anonymous}");
}

#[test]
fn a_listing_cache_ttl_beyond_its_bound_stops_the_gateway_at_start() {
    for setting in ["5000", "soon"] {
        let output = osbd(
            &["gateway", "--listen", "127.0.0.1:0"],
            &[("OPENSANDBOX_LISTING_CACHE_TTL_MS", setting)],
        );
        let (_, stderr) = text(&output);
        assert!(!output.status.success(), "{setting}: {stderr}");
        assert!(
            stderr.contains("OPENSANDBOX_LISTING_CACHE_TTL_MS") && stderr.contains("1000"),
            "{setting}: the refusal names the setting and its range: {stderr}"
        );
    }
}

#[test]
fn an_http_worker_count_out_of_range_stops_the_gateway_at_start() {
    for setting in ["0", "65", "many"] {
        let output = osbd(
            &["gateway", "--listen", "127.0.0.1:0"],
            &[("OPENSANDBOX_HTTP_WORKERS", setting)],
        );
        let (_, stderr) = text(&output);
        assert!(!output.status.success(), "{setting}: {stderr}");
        assert!(
            stderr.contains("OPENSANDBOX_HTTP_WORKERS") && stderr.contains("1 to 64"),
            "{setting}: the refusal names the setting and its range: {stderr}"
        );
    }
}
