//! The full chain of issue 6, automated: `osbd up` on PostgreSQL + NATS, a local TLS origin that
//! plays an LLM API (200 only with the real key, which it echoes), and the real `oc` binary for
//! every step — project, secret (from stdin), sandbox; inside it `env` shows only the sealed
//! token; `curl` gets a 200 and the echo arrives as the token; another host is refused; the
//! secret is rotated and the next request uses the new value; checkpoint + restore, fork and a
//! golden snapshot each end with a 200. The canary is absent from everything `oc` printed, the
//! sandbox's files, osbd's logs (debug level), every NATS message, every database row and every
//! checkpoint file.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use osb_testkit::{Canary, LlmOrigin, TestDatabase};

use crate::support::{env_of, free_port, spawn_osbd, Reap};
use crate::{osbd, text};
use osbd::testkit::LLM_HOST;

const PREFIX: &str = "osbfc1";

/// Runs the real `oc` with the config `osbd up` wrote.
struct Oc {
    config: PathBuf,
    printed: Mutex<String>,
}

impl Oc {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new(crate::oc_bin::oc_path());
        for (name, _) in std::env::vars() {
            if name.starts_with("OPENSANDBOX_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .args(args)
            .env("OPENSANDBOX_CONFIG", &self.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("oc runs");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let output = child.wait_with_output().unwrap();
        let (out, err) = text(&output);
        self.printed
            .lock()
            .unwrap()
            .push_str(&format!("{out}{err}"));
        output
    }

    /// Runs and requires success; returns stdout.
    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.run(args, stdin);
        let (out, err) = text(&output);
        assert!(output.status.success(), "oc {args:?}: {out}{err}");
        out
    }

    /// `curl` to the origin with the sealed key from inside `sandbox`: (http code, body).
    fn curl(&self, sandbox: &str) -> (String, String) {
        let script = format!(
            "curl -sS -m 20 -w '\\n%{{http_code}}' -X POST -H \"x-api-key: $ANTHROPIC_API_KEY\" https://{LLM_HOST}/v1/messages"
        );
        let out = self.ok(&["exec", sandbox, "--", "sh", "-c", &script], None);
        let (body, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
        (code.to_owned(), body.to_owned())
    }
}

fn files_containing(dir: &Path, canary: &Canary) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.filter_map(Result::ok).map(|entry| entry.path()));
            }
        } else if meta.is_file() && meta.len() < 64 * 1024 * 1024 {
            let mut bytes = Vec::new();
            if std::fs::File::open(&path)
                .and_then(|mut file| file.read_to_end(&mut bytes))
                .is_ok()
                && !canary.found_in_bytes(&bytes).is_empty()
            {
                found.push(path);
            }
        }
    }
    found
}

// `oc` runs as a blocking child process: the origin needs other threads to keep answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn full_chain_over_nats_with_osbd_up_and_oc() {
    let temp = tempfile::tempdir().unwrap();
    let database = TestDatabase::postgres().await.unwrap();
    let canary = Canary::new("full-chain");
    let rotated = Canary::new("full-chain-rotated");
    let origin_ip = Ipv4Addr::new(127, 78, 202, 9);
    let origin = LlmOrigin::start(
        LLM_HOST,
        SocketAddr::from((origin_ip, 443)),
        canary.value().to_owned(),
    )
    .await;
    let origin_ca = temp.path().join("origin-ca.pem");
    std::fs::write(&origin_ca, &origin.ca_pem).unwrap();
    let data_dir = temp.path().join("data");
    let sandboxes_dir = data_dir.join("worker/sandboxes");
    let _reap = Reap(vec![(PREFIX.to_owned(), sandboxes_dir.clone())]);
    let config = temp.path().join("oc.toml");

    // Everything on NATS for the whole run.
    let seen_on_nats = Arc::new(Mutex::new(Vec::<u8>::new()));
    let bus = osb_bus::connect_bus(Some("nats://127.0.0.1:4222"))
        .await
        .unwrap();
    let mut all = bus.subscribe(">").await.unwrap();
    bus.flush().await.unwrap();
    let sink = seen_on_nats.clone();
    let nats = tokio::spawn(async move {
        while let Some(message) = all.next().await {
            let mut sink = sink.lock().unwrap();
            sink.extend_from_slice(message.subject.as_bytes());
            sink.extend_from_slice(&message.payload);
            sink.extend_from_slice(format!("{:?}", message.headers).as_bytes());
        }
    });

    let master = text(&osbd(&["keys", "generate"], &[])).0.trim().to_owned();
    // This run's commands in a space of their own (other runs share the NATS server).
    let command_space = format!("f{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = env_of(&[
        ("DATABASE_URL", database.url()),
        ("NATS_URL", "nats://127.0.0.1:4222"),
        (osb_bus::COMMAND_SPACE_ENV, &command_space),
        ("OPENSANDBOX_SECRET_ENCRYPTION_KEY", &master),
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
        ("OSB_LOG", "debug"),
    ]);
    let mut up = spawn_osbd(
        &[
            "up",
            "--listen",
            &listen,
            "--prefix",
            PREFIX,
            "--pool",
            "100.70.202.0/24",
        ],
        &env,
    );
    let banner = up.banner.clone();
    assert!(banner.contains("NATS"), "{banner}");

    let oc = Oc {
        config,
        printed: Mutex::new(String::new()),
    };
    oc.ok(&["project", "create", "demo", "--allow", LLM_HOST], None);
    oc.ok(
        &["secret", "set", "demo", "ANTHROPIC_API_KEY"],
        Some(canary.value()),
    );
    let id = oc
        .ok(&["create", "--project", "demo"], None)
        .trim()
        .to_owned();
    assert!(id.starts_with("sbx_"), "{id}");

    // Inside: the token only; curl gets a 200 and the echo comes back as the token.
    let env = oc.ok(&["exec", &id, "--", "env"], None);
    let token = env
        .lines()
        .find_map(|line| line.strip_prefix("ANTHROPIC_API_KEY="))
        .expect("sealed env")
        .to_owned();
    assert!(token.starts_with("osb_sealed_"), "{token}");
    let (code, body) = oc.curl(&id);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains(&token), "{body}");

    // Another host: refused, readably (Python shows the proxy's reason).
    let refused = oc.run(
        &[
            "exec",
            &id,
            "--",
            "python3",
            "-c",
            "import urllib.request\ntry:\n urllib.request.urlopen('https://example.org/', timeout=10)\nexcept Exception as e:\n print(e)",
        ],
        None,
    );
    let (refused_out, _) = text(&refused);
    assert!(refused_out.contains("403"), "{refused_out}");

    // Rotation: the next request carries the new value, without a restart.
    origin.set_real_key(rotated.value());
    oc.ok(
        &["secret", "set", "demo", "ANTHROPIC_API_KEY"],
        Some(rotated.value()),
    );
    let (code, body) = oc.curl(&id);
    assert_eq!(code, "200", "after rotation: {body}");

    // Checkpoint + restore, fork, golden snapshot: each ends with a 200.
    oc.ok(
        &["exec", &id, "--", "sh", "-c", "echo one > /workspace/f"],
        None,
    );
    let checkpoint = oc
        .ok(&["checkpoint", "create", &id], None)
        .trim()
        .to_owned();
    oc.ok(
        &["exec", &id, "--", "sh", "-c", "echo two > /workspace/f"],
        None,
    );
    oc.ok(&["restore", &id, &checkpoint], None);
    assert_eq!(
        oc.ok(&["exec", &id, "--", "cat", "/workspace/f"], None)
            .trim(),
        "one"
    );
    assert_eq!(oc.curl(&id).0, "200", "after restore");
    let fork = oc.ok(&["fork", &checkpoint], None).trim().to_owned();
    assert_eq!(oc.curl(&fork).0, "200", "fork");
    oc.ok(&["snapshot", "create", "golden", "--sandbox", &id], None);
    let booted = oc
        .ok(
            &["create", "--project", "demo", "--snapshot", "golden"],
            None,
        )
        .trim()
        .to_owned();
    assert_eq!(oc.curl(&booted).0, "200", "snapshot boot");

    // Absences, while everything still exists on disk.
    let leaks: Vec<PathBuf> = [&canary, &rotated]
        .iter()
        .flat_map(|secret| files_containing(&data_dir, secret))
        .collect();
    assert!(leaks.is_empty(), "secret values in files: {leaks:?}");
    let store = osb_store::Store::connect(database.url()).await.unwrap();
    let rows = store.dump_all_rows_as_text().await.unwrap();
    canary.assert_absent("database rows", &rows);
    rotated.assert_absent("database rows", &rows);

    for sandbox in [&id, &fork, &booted] {
        oc.ok(&["sandbox", "kill", sandbox], None);
    }
    assert!(up.stop("INT"), "osbd up exits cleanly on Ctrl-C");
    let census = osb_vm::netns::census_worker(PREFIX, &sandboxes_dir)
        .await
        .unwrap();
    assert!(census.is_empty(), "{census:?}");

    nats.abort();
    delete_command_space(&command_space).await;
    let printed = oc.printed.lock().unwrap().clone();
    let logs = up.logs.lock().unwrap().clone();
    let nats_bytes = seen_on_nats.lock().unwrap().clone();
    for secret in [&canary, &rotated] {
        secret.assert_absent("everything oc printed", &printed);
        secret.assert_absent("osbd logs", &logs);
        assert!(
            secret.found_in_bytes(&nats_bytes).is_empty(),
            "a secret value crossed NATS"
        );
    }
    assert!(!nats_bytes.is_empty());
    // Events and logs name secrets and hosts, never the sandbox's tokens (DESIGN.md §6.7).
    assert!(!logs.contains(&token), "a sealed token reached osbd's logs");
    assert!(
        !String::from_utf8_lossy(&nats_bytes).contains(&token),
        "a sealed token crossed NATS"
    );
}

/// Removes the run's scoped command stream from the shared server.
async fn delete_command_space(tag: &str) {
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
