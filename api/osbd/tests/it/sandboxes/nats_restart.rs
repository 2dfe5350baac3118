//! A NATS restart in the middle of creates (issue 13 item 3): a platform on a NATS server of
//! the test's own (`nats-server -js` on a free loopback port, its JetStream store in a
//! temporary directory, so the shared server is never touched), creates started through the API
//! while the server is killed and started again on the same port and store. Every create ends
//! either running and working, or unwound with nothing left; then each is destroyed and nothing
//! is left at all.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use osb_bus::command::CommandSettings;
use osb_bus::NatsBus;
use osb_control::CommandTimings;
use osb_store::SandboxStatus;
use serde_json::json;

use osbd::testkit::{start_platform, PlatformOptions};

/// A `nats-server` child, killed on drop.
struct NatsServer {
    child: Child,
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nats(port: u16, store: &std::path::Path) -> NatsServer {
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server is installed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    NatsServer { child }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn creates_survive_a_nats_restart() {
    let store = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start_nats(port, store.path());
    let settings = CommandSettings {
        ack_wait: Duration::from_secs(2),
        ..CommandSettings::default()
    };
    let nats = NatsBus::connect(&format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap()
        .with_command_settings(settings);
    nats.ensure_streams().await.unwrap();
    let mut options = PlatformOptions::new("osbn1", 140);
    options.bus = Some(Arc::new(nats));
    options.lost_after = Some(Duration::from_secs(10));
    options.commands = Some(CommandTimings {
        attempt_wait: Duration::from_secs(3),
        attempts: 5,
    });
    let platform = Arc::new(start_platform(options).await);
    platform.project_with_key("demo").await;

    let mut creates = Vec::new();
    for _ in 0..3 {
        let platform = platform.clone();
        creates.push(tokio::spawn(async move {
            platform
                .call("POST", "/api/sandboxes", Some(json!({ "project": "demo" })))
                .await
        }));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    // Kill the server under the creates and bring it back on the same port and store.
    drop(server);
    tokio::time::sleep(Duration::from_millis(500)).await;
    server = start_nats(port, store.path());

    let mut created = Vec::new();
    for create in creates {
        let (status, body) = create.await.unwrap();
        if status == 201 {
            let id = body["sandboxID"].as_str().unwrap().to_owned();
            let (code, text) = platform.curl_origin(&id).await;
            assert_eq!(code, "200", "a created sandbox works: {text}");
            created.push(id);
        } else {
            // Unwound: said so, and nothing of it is left.
            assert!(status >= 500, "{status}: {body}");
        }
    }
    for id in &created {
        let (status, body) = platform
            .call("DELETE", &format!("/api/sandboxes/{id}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let worker = &platform.workers[0];
    for row in platform.store.list_sandboxes(platform.org).await.unwrap() {
        assert!(
            matches!(row.status, SandboxStatus::Destroyed | SandboxStatus::Failed),
            "{:?} is {:?}",
            row.id,
            row.status
        );
        assert!(worker.proxy().registry().session_of(row.id).is_none());
        assert!(worker.runtime().info(row.id).await.is_err());
    }
    for (prefix, data_dir) in &platform.prefixes {
        let census = osb_vm::netns::census_worker(prefix, data_dir)
            .await
            .unwrap();
        assert!(census.is_empty(), "host objects left: {census:?}");
    }
    println!(
        "{} of 3 creates completed across the restart",
        created.len()
    );
    drop(server);
}
