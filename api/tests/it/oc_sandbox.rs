//! The real `oc` binary driving a real platform (control plane + worker): create → exec with the
//! exit code propagated → checkpoint create/list → restore in place → fork → golden snapshot
//! create/list and boot → sandbox list/get → kill, asserting on `--json` output, while
//! `oc events --follow` shows the sandbox's `created` event.

use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::oc_support::{oc_command, stderr_of, stdout_of};

/// Where the platform under test answers, and a key of its org.
struct Platform {
    url: String,
    key: String,
}

/// The platform harness lands with `osbd up`; until then this reads a running platform's URL and
/// key from the environment.
async fn platform() -> Platform {
    Platform {
        url: std::env::var("OC_TEST_API_URL").expect("OC_TEST_API_URL"),
        key: std::env::var("OC_TEST_API_KEY").expect("OC_TEST_API_KEY"),
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env(platform: &Platform) -> [(&'static str, &str); 2] {
    [
        ("OPENSANDBOX_API_URL", platform.url.as_str()),
        ("OPENSANDBOX_API_KEY", platform.key.as_str()),
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

fn exec_stdout(platform: &Platform, sandbox: &str, script: &str) -> String {
    let output = oc(platform, &["exec", sandbox, "--", "sh", "-c", script]);
    assert!(output.status.success(), "{script}: {}", stderr_of(&output));
    stdout_of(&output)
}

#[tokio::test]
#[ignore = "needs platform harness"]
async fn the_sandbox_lifecycle_through_the_cli() {
    let platform = platform().await;
    let project = oc(&platform, &["project", "create", "oc-flow"]);
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
    tokio::time::sleep(Duration::from_millis(500)).await;

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
    let ran = oc_json(
        &platform,
        &["exec", &sandbox, "--", "sh", "-c", "echo json"],
    );
    assert_eq!(
        (ran["exitCode"].as_i64(), ran["stdout"].as_str()),
        (Some(0), Some("json\n"))
    );

    exec_stdout(&platform, &sandbox, "echo one > /root/oc-state");
    let checkpoint = id(
        &oc_json(&platform, &["checkpoint", "create", &sandbox]),
        "checkpointID",
    );
    let listed = oc_json(&platform, &["checkpoint", "list", &sandbox]);
    assert!(listed.as_array().is_some_and(|list| list
        .iter()
        .any(|entry| entry["checkpointID"] == checkpoint.as_str())));

    exec_stdout(&platform, &sandbox, "echo two > /root/oc-state");
    let restored = oc_json(&platform, &["restore", &sandbox, &checkpoint]);
    assert_eq!(id(&restored, "sandboxID"), sandbox);
    assert_eq!(
        exec_stdout(&platform, &sandbox, "cat /root/oc-state"),
        "one\n"
    );

    let forked = oc_json(&platform, &["fork", &checkpoint, "--env", "ROLE=fork"]);
    let fork = id(&forked, "sandboxID");
    assert_ne!(fork, sandbox);
    assert_eq!(
        exec_stdout(&platform, &fork, "cat /root/oc-state; echo $ROLE"),
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
        exec_stdout(&platform, &golden, "cat /root/oc-state"),
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

    let created_subject = format!(".{sandbox}.created");
    let mut seen = Vec::new();
    while let Ok(line) = received.recv_timeout(Duration::from_secs(10)) {
        let found = line.contains(&created_subject);
        seen.push(line);
        if found {
            return;
        }
    }
    panic!("no created event for {sandbox} in {seen:?}");
}
