//! The real `oc` binary driving a real platform (control plane + netns worker + sealing proxy, from
//! `platform.rs`): project and secret through `oc` (the value on stdin only), create → exec with
//! the exit code propagated and the secret sealed → checkpoint create/list → restore in place →
//! fork → golden snapshot create/list and boot → sandbox list/get → kill, asserting on `--json`
//! output, while `oc events --follow` shows the sandbox's `created` event; the secret value never
//! appears in anything `oc` printed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::oc_bin::{oc_command, stderr_of, stdout_of};
use osbd::testkit::{start_platform, Platform, PlatformOptions, LLM_HOST};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env(platform: &Platform) -> [(&'static str, &str); 2] {
    [
        ("OPENSANDBOX_API_URL", platform.api_url.as_str()),
        ("OPENSANDBOX_API_KEY", platform.api_key.as_str()),
    ]
}

fn oc(platform: &Platform, args: &[&str]) -> Output {
    oc_command(args, &env(platform)).output().expect("oc runs")
}

/// `oc --json ARGS…`, which must succeed; its JSON.
fn oc_json(platform: &Platform, args: &[&str]) -> Value {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let output = oc(platform, &with_json);
    assert!(
        output.status.success(),
        "oc {args:?}: {}{}",
        stdout_of(&output),
        stderr_of(&output)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints JSON")
}

fn id(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
        .to_owned()
}

/// `oc secret set oc-flow ANTHROPIC_API_KEY` with `value` on stdin.
fn set_secret(platform: &Platform, value: &str) -> Output {
    let mut command = oc_command(
        &["secret", "set", "oc-flow", "ANTHROPIC_API_KEY"],
        &env(platform),
    );
    let mut child = command
        .stdin(Stdio::piped())
        .spawn()
        .expect("oc secret set");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(value.as_bytes()).expect("value on stdin");
    }
    child.wait_with_output().expect("oc secret set finishes")
}

fn exec_stdout(platform: &Platform, sandbox: &str, script: &str) -> String {
    let output = oc(platform, &["exec", sandbox, "--", "sh", "-c", script]);
    assert!(output.status.success(), "{script}: {}", stderr_of(&output));
    stdout_of(&output)
}

// `oc` runs as a blocking child process while the platform serves it from this test's runtime:
// other worker threads must keep the platform's tasks (database pool, sagas) moving meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sandbox_lifecycle_through_the_cli() {
    let platform = start_platform(PlatformOptions::new("osbo1", 20)).await;
    let canary = platform.canary.clone();
    let mut printed = String::new();
    let project = oc(
        &platform,
        &["project", "create", "oc-flow", "--allow", LLM_HOST],
    );
    assert!(project.status.success(), "{}", stderr_of(&project));
    let mut events = oc_command(&["events", "--follow"], &env(&platform));
    let mut events = KillOnDrop(events.stdout(Stdio::piped()).spawn().expect("oc events"));
    let (lines, received) = mpsc::channel();
    let stdout = events.0.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    // Events are live only: set the secret until its `secret_updated` event shows that the
    // stream is connected, so the sandbox's `created` event cannot be missed below.
    let mut connected = false;
    for _attempt in 0..10 {
        let secret = set_secret(&platform, canary.value());
        assert!(secret.status.success(), "{}", stderr_of(&secret));
        printed.push_str(&stdout_of(&secret));
        printed.push_str(&stderr_of(&secret));
        while let Ok(line) = received.recv_timeout(Duration::from_secs(1)) {
            printed.push_str(&line);
            if line.contains(".secret_updated") {
                connected = true;
                break;
            }
        }
        if connected {
            break;
        }
    }
    assert!(connected, "oc events --follow never showed secret_updated");

    let created = oc_json(
        &platform,
        &["create", "--project", "oc-flow", "--env", "GREETING=hi"],
    );
    let sandbox = id(&created, "sandboxID");
    assert_eq!(created["status"], "running");
    assert_eq!(created["project"], "oc-flow");

    let ran = oc(
        &platform,
        &[
            "exec",
            &sandbox,
            "--",
            "sh",
            "-c",
            "echo $GREETING; echo oops >&2; exit 7",
        ],
    );
    assert_eq!(ran.status.code(), Some(7), "{}", stderr_of(&ran));
    assert_eq!(stdout_of(&ran), "hi\n");
    assert_eq!(stderr_of(&ran), "oops\n");
    let sealed = exec_stdout(&platform, &sandbox, "echo $ANTHROPIC_API_KEY");
    assert!(sealed.starts_with("osb_sealed_"), "{sealed}");
    let curl = format!(
        "curl -sS -m 20 -o /dev/null -w '%{{http_code}}' -X POST -H \"x-api-key: $ANTHROPIC_API_KEY\" https://{LLM_HOST}/v1/messages"
    );
    assert_eq!(exec_stdout(&platform, &sandbox, &curl), "200");
    let ran = oc_json(
        &platform,
        &["exec", &sandbox, "--", "sh", "-c", "echo json"],
    );
    assert_eq!(
        (ran["exitCode"].as_i64(), ran["stdout"].as_str()),
        (Some(0), Some("json\n"))
    );

    exec_stdout(&platform, &sandbox, "echo one > /workspace/oc-state");
    let checkpoint = id(
        &oc_json(&platform, &["checkpoint", "create", &sandbox]),
        "checkpointID",
    );
    let listed = oc_json(&platform, &["checkpoint", "list", &sandbox]);
    assert!(listed.as_array().is_some_and(|list| list
        .iter()
        .any(|entry| entry["checkpointID"] == checkpoint.as_str())));

    exec_stdout(&platform, &sandbox, "echo two > /workspace/oc-state");
    let restored = oc_json(&platform, &["restore", &sandbox, &checkpoint]);
    assert_eq!(id(&restored, "sandboxID"), sandbox);
    assert_eq!(
        exec_stdout(&platform, &sandbox, "cat /workspace/oc-state"),
        "one\n"
    );

    let forked = oc_json(&platform, &["fork", &checkpoint, "--env", "ROLE=fork"]);
    let fork = id(&forked, "sandboxID");
    assert_ne!(fork, sandbox);
    assert_eq!(
        exec_stdout(&platform, &fork, "cat /workspace/oc-state; echo $ROLE"),
        "one\nfork\n"
    );

    let snapshot = oc_json(
        &platform,
        &["snapshot", "create", "oc-golden", "--sandbox", &sandbox],
    );
    assert_eq!(snapshot["name"], "oc-golden");
    let snapshots = oc_json(&platform, &["snapshot", "list"]);
    assert!(snapshots
        .as_array()
        .is_some_and(|list| list.iter().any(|entry| entry["name"] == "oc-golden")));
    let booted = oc_json(
        &platform,
        &["create", "--project", "oc-flow", "--snapshot", "oc-golden"],
    );
    let golden = id(&booted, "sandboxID");
    assert_eq!(
        exec_stdout(&platform, &golden, "cat /workspace/oc-state"),
        "one\n"
    );

    let listed = oc_json(&platform, &["sandbox", "list"]);
    let ids: Vec<&str> = listed
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|entry| entry["sandboxID"].as_str())
                .collect()
        })
        .unwrap_or_default();
    for expected in [&sandbox, &fork, &golden] {
        assert!(ids.contains(&expected.as_str()), "{expected} in {ids:?}");
    }
    assert_eq!(
        oc_json(&platform, &["sandbox", "get", &sandbox])["status"],
        "running"
    );

    for doomed in [&golden, &fork, &sandbox] {
        assert_eq!(
            oc_json(&platform, &["sandbox", "kill", doomed])["status"],
            "destroyed"
        );
    }
    let gone = oc(&platform, &["exec", &sandbox, "--", "true"]);
    assert_ne!(gone.status.code(), Some(0));

    for listing in [
        oc(&platform, &["sandbox", "list"]),
        oc(&platform, &["secret", "list", "oc-flow"]),
        oc(&platform, &["--json", "sandbox", "get", &sandbox]),
    ] {
        printed.push_str(&stdout_of(&listing));
        printed.push_str(&stderr_of(&listing));
    }
    canary.assert_absent("everything oc printed", &printed);

    let created_subject = format!(".{sandbox}.created");
    let mut seen = Vec::new();
    while let Ok(line) = received.recv_timeout(Duration::from_secs(10)) {
        let found = line.contains(&created_subject);
        seen.push(line);
        if found {
            break;
        }
    }
    assert!(
        seen.iter().any(|line| line.contains(&created_subject)),
        "no created event for {sandbox} in {seen:?}"
    );
    drop(events);
    for (prefix, data_dir) in &platform.prefixes {
        let census = osb_vm::netns::census_worker(prefix, data_dir)
            .await
            .expect("census");
        assert!(
            census.is_empty(),
            "leftovers after oc sandbox kill: {census:?}"
        );
    }
    platform.stop().await;
}
