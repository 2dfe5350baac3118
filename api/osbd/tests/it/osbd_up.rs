//! `osbd up` as a newcomer runs it: no `DATABASE_URL`, no `NATS_URL` — the embedded SQLite
//! database, the in-process bus, a development PKI, one netns worker and the gateway in one
//! process. It writes the CLI config (0600, never overwritten), serves the whole chain (project
//! → secret → sandbox → curl through the proxy) on sandbox disks of `--sandbox-disk-mb`, and
//! Ctrl-C (SIGINT) destroys its sandboxes: no namespace, veth, nftables table, mount or loop
//! device is left and the rows say `destroyed`.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;

use osb_testkit::{Canary, LlmOrigin};
use serde_json::json;

use crate::support::{env_of, free_port, spawn_osbd, Reap};
use osbd::testkit::reqwest_lite::Client;
use osbd::testkit::LLM_HOST;

const PREFIX: &str = "osbup1";

#[tokio::test]
async fn osbd_up_runs_the_chain_and_ctrl_c_destroys_its_sandboxes() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let config = temp.path().join("home/.config/opensandbox/config.toml");
    let canary = Canary::new("osbd-up");
    let origin_ip = Ipv4Addr::new(127, 78, 201, 9);
    let origin = LlmOrigin::start(
        LLM_HOST,
        SocketAddr::from((origin_ip, 443)),
        canary.value().to_owned(),
    )
    .await;
    let origin_ca = temp.path().join("origin-ca.pem");
    std::fs::write(&origin_ca, &origin.ca_pem).unwrap();
    let sandboxes_dir = data_dir.join("worker/sandboxes");
    let _reap = Reap(vec![(PREFIX.to_owned(), sandboxes_dir.clone())]);

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = env_of(&[
        ("OPENSANDBOX_DATA_DIR", &data_dir.display().to_string()),
        ("OPENSANDBOX_CONFIG", &config.display().to_string()),
        (
            "OPENSANDBOX_PROXY_RESOLVE",
            &format!("{LLM_HOST}={origin_ip}"),
        ),
        (
            "OPENSANDBOX_PROXY_EXTRA_CA",
            &origin_ca.display().to_string(),
        ),
        ("OPENSANDBOX_PROXY_ALLOW_LOOPBACK", "1"),
        // Every log line, at the most verbose level, is searched for the canary.
        ("OSB_LOG", "debug"),
    ]);
    let args = [
        "up",
        "--listen",
        &listen,
        "--prefix",
        PREFIX,
        "--pool",
        "100.70.201.0/24",
        "--sandbox-disk-mb",
        "256",
    ];
    let mut up = spawn_osbd(&args, &env);
    let banner = up.banner.clone();
    assert!(banner.contains("in-process"), "{banner}");
    assert!(banner.contains("embedded SQLite"), "{banner}");
    assert!(banner.contains("netns runtime"), "{banner}");
    assert!(banner.contains("256 MiB each"), "{banner}");

    // The CLI config exists, is private, and holds a working key.
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&config).unwrap();
    let key = text
        .lines()
        .find_map(|line| line.strip_prefix("api_key = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let api = format!("http://127.0.0.1:{port}");
    let call = |method: &'static str, path: String, body: Option<serde_json::Value>| {
        let (api, key) = (api.clone(), key.clone());
        async move { Client.call(&api, &key, method, &path, body, &[]).await }
    };

    let (status, _) = call(
        "POST",
        "/api/projects".into(),
        Some(json!({ "name": "demo", "egressAllowlist": [LLM_HOST] })),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        "PUT",
        "/api/projects/demo/secrets/ANTHROPIC_API_KEY".into(),
        Some(json!({ "value": canary.value() })),
    )
    .await;
    assert_eq!(status, 201);
    let (status, sandbox) = call(
        "POST",
        "/api/sandboxes".into(),
        Some(json!({ "project": "demo" })),
    )
    .await;
    assert_eq!(status, 201, "{sandbox}");
    let id = sandbox["sandboxID"].as_str().unwrap().to_owned();
    let (status, out) = call(
        "POST",
        format!("/api/sandboxes/{id}/exec"),
        Some(json!({ "cmd": ["sh", "-c", format!("curl -sS -m 20 -o /dev/null -w '%{{http_code}}' -X POST -H \"x-api-key: $ANTHROPIC_API_KEY\" https://{LLM_HOST}/v1/messages")] })),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["stdout"], "200", "{out}");
    // The sandbox writes to a disk of the size `--sandbox-disk-mb` set (ADR 0207).
    let (status, out) = call(
        "POST",
        format!("/api/sandboxes/{id}/exec"),
        Some(json!({ "cmd": ["sh", "-c", "df -k /workspace | tail -n 1"] })),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let disk_kib: u64 = out["stdout"]
        .as_str()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|size| size.parse().ok())
        .unwrap_or_else(|| panic!("df inside the sandbox: {out}"));
    assert!((200 * 1024..=256 * 1024).contains(&disk_kib), "{out}");
    // Concurrent creates on the embedded database: its writers wait for each other.
    let concurrent = futures_util::future::join_all((0..3).map(|_| {
        call(
            "POST",
            "/api/sandboxes".into(),
            Some(json!({ "project": "demo", "memoryMB": 256 })),
        )
    }))
    .await;
    for (status, sandbox) in &concurrent {
        assert_eq!(*status, 201, "{sandbox}");
        assert_eq!(sandbox["status"], "running", "{sandbox}");
    }
    // A checkpoint on the embedded database too.
    let (status, checkpoint) = call("POST", format!("/api/sandboxes/{id}/checkpoints"), None).await;
    assert_eq!(status, 201, "{checkpoint}");

    // Ctrl-C: the sandbox is destroyed, nothing is left on the host.
    assert!(up.stop("INT"), "osbd up exits cleanly on Ctrl-C");
    let mut logs = up.logs.lock().unwrap().clone();
    let census = osb_vm::netns::census_worker(PREFIX, &sandboxes_dir)
        .await
        .unwrap();
    assert!(census.is_empty(), "{census:?}");
    let store = osb_store::Store::connect(&format!(
        "sqlite://{}?mode=rw",
        data_dir.join("opensandbox.sqlite").display()
    ))
    .await
    .unwrap();
    let row = store.find_sandbox(id.parse().unwrap()).await.unwrap();
    assert_eq!(row.status, osb_store::SandboxStatus::Destroyed);
    let rows = store.dump_all_rows_as_text().await.unwrap();
    canary.assert_absent("the embedded database", &rows);

    // A second start reuses the data and leaves the existing CLI config alone.
    let mut again = spawn_osbd(&args, &env);
    assert!(
        again.banner.contains("existing, left as is"),
        "{}",
        again.banner
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
    let (status, projects) = call("GET", "/api/projects".into(), None).await;
    assert_eq!(status, 200);
    assert_eq!(projects[0]["name"], "demo");
    assert!(again.stop("TERM"), "osbd up exits cleanly on SIGTERM");
    logs.push_str(&again.logs.lock().unwrap());
    assert!(
        logs.contains("DEBUG") || logs.contains("INFO"),
        "logs were captured"
    );
    canary.assert_absent("osbd logs at debug level", &logs);
    drop(origin);
}
