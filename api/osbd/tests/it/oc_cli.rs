//! The real `oc` binary against a running `osbd gateway`: projects and secrets end to end, the
//! secret value only ever on stdin (never in argv, output or errors), `--json`, and exit codes
//! that tell failures apart.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use osb_testkit::Canary;

use crate::osbd_gateway::{start_gateway, RunningGateway};

fn oc(gateway: &RunningGateway, args: &[&str], stdin: Option<&str>, key: Option<&str>) -> Output {
    let mut command = Command::new(crate::oc_bin::oc_path());
    command
        .args(args)
        .env(
            "OPENSANDBOX_API_URL",
            format!("http://127.0.0.1:{}", gateway.port),
        )
        .env_remove("OPENSANDBOX_API_KEY")
        .env(
            "OPENSANDBOX_CONFIG",
            "/nonexistent/opensandbox-test/config.toml",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(key) = key {
        command.env("OPENSANDBOX_API_KEY", key);
    }
    let mut child = command.spawn().expect("oc runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("oc finishes")
}

fn out(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn projects_and_secrets_through_the_cli() {
    let gateway = start_gateway().await;
    let key = gateway.api_key.clone();
    let key = Some(key.as_str());
    let canary = Canary::new("oc");
    let mut everything_printed = String::new();

    let created = oc(
        &gateway,
        &[
            "project",
            "create",
            "web",
            "--allow",
            "api.example.test",
            "--cpu",
            "2",
        ],
        None,
        key,
    );
    everything_printed.push_str(&out(&created));
    assert!(created.status.success(), "{}", out(&created));
    assert!(out(&created).contains("egressAllowlist: api.example.test"));

    let listed = oc(&gateway, &["project", "list"], None, key);
    assert!(
        out(&listed)
            .lines()
            .next()
            .unwrap_or_default()
            .starts_with("NAME"),
        "{}",
        out(&listed)
    );
    assert!(out(&listed).contains("web"));

    let json = oc(&gateway, &["--json", "project", "get", "web"], None, key);
    let parsed: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    assert_eq!(parsed["cpuCount"], 2);

    // The value goes in on stdin only.
    let set = oc(
        &gateway,
        &["secret", "set", "web", "ANTHROPIC_API_KEY"],
        Some(&format!("{}\n", canary.value())),
        key,
    );
    everything_printed.push_str(&out(&set));
    assert!(set.status.success(), "{}", out(&set));
    assert!(out(&set).contains("version 1"));
    let listed = oc(&gateway, &["secret", "list", "web"], None, key);
    everything_printed.push_str(&out(&listed));
    assert!(out(&listed).contains("ANTHROPIC_API_KEY"));
    let refused = oc(
        &gateway,
        &["secret", "set", "web", "HTTPS_PROXY"],
        Some(canary.value()),
        key,
    );
    everything_printed.push_str(&out(&refused));
    assert_eq!(refused.status.code(), Some(2), "{}", out(&refused));
    canary.assert_absent("oc output and errors", &everything_printed);

    // Exit codes say what went wrong.
    let missing = oc(&gateway, &["project", "get", "nope"], None, key);
    assert_eq!(missing.status.code(), Some(4), "{}", out(&missing));
    let duplicate = oc(&gateway, &["project", "create", "web"], None, key);
    assert_eq!(duplicate.status.code(), Some(5));
    let anonymous = oc(&gateway, &["project", "list"], None, None);
    assert_eq!(anonymous.status.code(), Some(3));
    assert!(
        out(&anonymous).contains("OPENSANDBOX_API_KEY"),
        "says what to do: {}",
        out(&anonymous)
    );
    let nothing = oc(&gateway, &["project", "update", "web"], None, key);
    assert_eq!(nothing.status.code(), Some(2));

    let deleted = oc(
        &gateway,
        &["secret", "delete", "web", "ANTHROPIC_API_KEY"],
        None,
        key,
    );
    assert!(deleted.status.success());
    let deleted = oc(&gateway, &["project", "delete", "web"], None, key);
    assert!(deleted.status.success());
}

#[test]
fn an_unreachable_api_is_explained() {
    let output = Command::new(crate::oc_bin::oc_path())
        .args(["project", "list"])
        .env("OPENSANDBOX_API_URL", "http://127.0.0.1:9")
        .env("OPENSANDBOX_API_KEY", "osk_x")
        .env(
            "OPENSANDBOX_CONFIG",
            "/nonexistent/opensandbox-test/config.toml",
        )
        .output()
        .expect("oc runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach the API at http://127.0.0.1:9")
            && stderr.contains("osbd up")
            && stderr.contains("OPENSANDBOX_API_URL"),
        "{stderr}"
    );
}
