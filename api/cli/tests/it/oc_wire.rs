//! What the real `oc` binary sends and prints for the sandbox commands, against a recording stub
//! that answers with the REST contract's shapes: request paths and bodies, the Idempotency-Key,
//! ids alone on stdout for scripts, warnings on stderr, `oc exec` output byte for byte with the
//! command's exit code, refusals mapped to exit codes, and the event stream with and without
//! `--follow`. The same commands run against the real platform in `oc_sandbox.rs`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::oc_support::{in_terminal, oc_run, stderr_of, stdout_of, Recorded, Reply, StubApi};

fn sandbox(id: &str, status: &str) -> Value {
    json!({
        "sandboxID": id, "status": status, "workerID": "wrk_1", "project": "web",
        "projectId": "prj_1", "template": "base", "cpuCount": 1, "memoryMB": 512,
        "timeoutSec": 300, "runtime": "netns", "egress": "cooperative",
        "warning": "egress control is cooperative on this worker",
        "failureReason": null, "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z"
    })
}

fn contract(request: &Recorded) -> Reply {
    let checkpoint =
        json!({"checkpointID": "chk_1", "sandboxID": "sbx_1", "createdAt": "2026-01-01T00:00:01Z"});
    let snapshot = json!({"name": "golden", "checkpointID": "chk_2", "sandboxID": "sbx_1", "workerID": "wrk_1", "createdAt": "2026-01-01T00:00:02Z"});
    match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/api/sandboxes") => Reply::json(201, sandbox("sbx_1", "running")),
        ("GET", "/api/sandboxes") => Reply::json(200, json!([sandbox("sbx_1", "running")])),
        ("GET", "/api/sandboxes/sbx_1") => Reply::json(200, sandbox("sbx_1", "running")),
        ("DELETE", "/api/sandboxes/sbx_1") => Reply::json(200, sandbox("sbx_1", "destroyed")),
        ("POST", "/api/sandboxes/sbx_1/exec/stream") => {
            use base64::Engine;
            let body: Value = serde_json::from_str(&request.body).unwrap_or_default();
            let code = if body["cmd"][2] == "exit 7" { 7 } else { 0 };
            let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
            let lines = [
                json!({"stdout": b64("out \u{e9}\n")}),
                json!({"stderr": b64("err line\n")}),
                json!({"stdout": b64("  spaced\n")}),
                json!({"exitCode": code, "timedOut": false}),
            ];
            Reply {
                status: 200,
                content_type: "application/x-ndjson",
                body: lines.iter().map(|line| format!("{line}\n")).collect(),
                hold: Duration::ZERO,
                delay: Duration::ZERO,
                next_cursor: None,
            }
        }
        ("POST", "/api/sandboxes/sbx_1/exec") => {
            let body: Value = serde_json::from_str(&request.body).unwrap_or_default();
            let code = if body["cmd"][2] == "exit 7" { 7 } else { 0 };
            Reply::json(
                200,
                json!({"exitCode": code, "stdout": "out \u{e9}\n  spaced\n", "stderr": "err line\n",
                       "stdoutTruncated": false, "stderrTruncated": true, "timedOut": false}),
            )
        }
        ("POST", "/api/sandboxes/sbx_1/checkpoints") => Reply::json(201, checkpoint),
        ("GET", "/api/sandboxes/sbx_1/checkpoints") => Reply::json(200, json!([checkpoint])),
        ("POST", "/api/sandboxes/sbx_1/restore") => Reply::json(200, sandbox("sbx_1", "running")),
        ("POST", "/api/sandboxes/from-checkpoint/chk_1") => {
            Reply::json(201, sandbox("sbx_2", "running"))
        }
        ("POST", "/api/snapshots") => Reply::json(201, snapshot),
        ("GET", "/api/snapshots") => Reply::json(200, json!([snapshot])).with_next("c2"),
        ("GET", "/api/snapshots?limit=500&cursor=c2") => {
            let mut second = snapshot.clone();
            second["name"] = json!("silver");
            Reply::json(200, json!([second]))
        }
        ("DELETE", "/api/sandboxes/sbx_1/checkpoints/chk_1" | "/api/snapshots/golden") => {
            Reply::json(204, Value::Null)
        }
        ("GET", "/api/sandboxes/sbx_1/allowed-hosts") => Reply::json(
            200,
            json!({"egressAllowlist": ["api.example.test"], "secrets": [{"name": "API_KEY", "allowedHosts": ["api.example.test"]}]}),
        ),
        _ => Reply::json(
            404,
            json!({"error": "sandbox not found", "code": "not_found"}),
        ),
    }
}

fn env(stub: &StubApi) -> [(&'static str, &str); 2] {
    [
        ("OPENSANDBOX_API_URL", stub.url.as_str()),
        ("OPENSANDBOX_API_KEY", "osb_wire"),
    ]
}

#[test]
fn create_sends_the_contract_body_and_prints_only_the_id() {
    let stub = StubApi::start(contract);
    let created = oc_run(
        &[
            "create",
            "--project",
            "web",
            "--template",
            "base",
            "--env",
            "DEBUG=1",
            "--env",
            "EMPTY=",
            "--cpu",
            "2",
            "--memory-mb",
            "256",
            "--timeout-sec",
            "60",
            "--idempotency-key",
            "retry-1",
        ],
        &env(&stub),
    );
    assert!(created.status.success(), "{}", stderr_of(&created));
    assert_eq!(stdout_of(&created), "sbx_1\n");
    assert!(stderr_of(&created).contains("warning: egress control is cooperative"));
    let request = &stub.requests()[0];
    assert_eq!(request.header("idempotency-key"), Some("retry-1"));
    assert_eq!(request.header("x-api-key"), Some("osb_wire"));
    assert_eq!(
        request.json(),
        json!({"project": "web", "template": "base", "envs": {"DEBUG": "1", "EMPTY": ""},
               "cpuCount": 2, "memoryMB": 256, "timeoutSec": 60})
    );

    let json_out = oc_run(
        &[
            "--json",
            "create",
            "--project",
            "web",
            "--snapshot",
            "golden",
        ],
        &env(&stub),
    );
    let printed: Value = serde_json::from_slice(&json_out.stdout).expect("--json prints JSON");
    assert_eq!(printed["sandboxID"], "sbx_1");
    assert_eq!(
        stub.requests()[1].json(),
        json!({"project": "web", "snapshot": "golden"})
    );
    assert_eq!(stub.requests()[1].header("idempotency-key"), None);
}

#[test]
fn exec_prints_output_verbatim_and_exits_with_the_commands_code() {
    let stub = StubApi::start(contract);
    let ran = oc_run(
        &[
            "exec",
            "sbx_1",
            "--env",
            "A=1",
            "--cwd",
            "/tmp",
            "--timeout-sec",
            "5",
            "--",
            "sh",
            "-c",
            "exit 7",
        ],
        &env(&stub),
    );
    assert_eq!(ran.status.code(), Some(7), "{}", stderr_of(&ran));
    assert_eq!(ran.stdout, "out \u{e9}\n  spaced\n".as_bytes());
    assert!(
        stderr_of(&ran).starts_with("err line\n"),
        "{}",
        stderr_of(&ran)
    );
    assert_eq!(stub.requests()[0].path, "/api/sandboxes/sbx_1/exec/stream");
    assert_eq!(
        stub.requests()[0].json(),
        json!({"cmd": ["sh", "-c", "exit 7"], "env": {"A": "1"}, "cwd": "/tmp", "timeoutSec": 5})
    );

    // --json waits for the whole result and keeps the worker's truncation flags.
    let ran = oc_run(&["--json", "exec", "sbx_1", "--", "true"], &env(&stub));
    assert_eq!(ran.status.code(), Some(0));
    let printed: Value = serde_json::from_slice(&ran.stdout).expect("--json prints JSON");
    assert_eq!(printed["stdout"], "out \u{e9}\n  spaced\n");
    assert_eq!(printed["stderrTruncated"], true);
    assert_eq!(stub.requests()[1].path, "/api/sandboxes/sbx_1/exec");
    assert_eq!(stub.requests()[1].json(), json!({"cmd": ["true"]}));

    let missing = oc_run(&["exec", "sbx_nope", "--", "true"], &env(&stub));
    assert_eq!(missing.status.code(), Some(4));
    assert!(
        stderr_of(&missing).contains("oc sandbox list"),
        "{}",
        stderr_of(&missing)
    );
}

#[test]
fn sandbox_checkpoint_snapshot_and_fork_commands_follow_the_contract() {
    let stub = StubApi::start(contract);
    let run = |args: &[&str]| {
        let output = oc_run(args, &env(&stub));
        assert!(output.status.success(), "{args:?}: {}", stderr_of(&output));
        stdout_of(&output)
    };
    assert!(run(&["sandbox", "list"]).starts_with("SANDBOXID"));
    assert!(run(&["sandbox", "get", "sbx_1"]).contains("egress: cooperative"));
    assert_eq!(run(&["checkpoint", "create", "sbx_1"]), "chk_1\n");
    assert!(run(&["checkpoint", "list", "sbx_1"]).contains("chk_1"));
    assert!(run(&["restore", "sbx_1", "chk_1"]).contains("restored from chk_1"));
    assert_eq!(
        run(&["fork", "chk_1", "--project", "web", "--env", "B=2"]),
        "sbx_2\n"
    );
    assert!(run(&["snapshot", "create", "golden", "--sandbox", "sbx_1"]).contains("chk_2"));
    let listed = run(&["snapshot", "list"]);
    assert!(
        listed.contains("golden") && listed.contains("silver"),
        "both pages: {listed}"
    );
    assert!(run(&["checkpoint", "delete", "sbx_1", "chk_1"]).contains("deleted"));
    assert!(run(&["snapshot", "delete", "golden"]).contains("deleted"));
    assert!(run(&["sandbox", "allowed-hosts", "sbx_1"]).contains("API_KEY"));
    assert!(run(&["sandbox", "kill", "sbx_1"]).contains("destroyed"));

    let sent: Vec<(String, String, String)> = stub
        .requests()
        .into_iter()
        .map(|request| (request.method, request.path, request.body))
        .collect();
    let expected = [
        ("GET", "/api/sandboxes", ""),
        ("GET", "/api/sandboxes/sbx_1", ""),
        ("POST", "/api/sandboxes/sbx_1/checkpoints", ""),
        ("GET", "/api/sandboxes/sbx_1/checkpoints", ""),
        (
            "POST",
            "/api/sandboxes/sbx_1/restore",
            r#"{"checkpointID":"chk_1"}"#,
        ),
        (
            "POST",
            "/api/sandboxes/from-checkpoint/chk_1",
            r#"{"envs":{"B":"2"},"project":"web"}"#,
        ),
        (
            "POST",
            "/api/snapshots",
            r#"{"name":"golden","sandboxID":"sbx_1"}"#,
        ),
        ("GET", "/api/snapshots", ""),
        ("GET", "/api/snapshots?limit=500&cursor=c2", ""),
        ("DELETE", "/api/sandboxes/sbx_1/checkpoints/chk_1", ""),
        ("DELETE", "/api/snapshots/golden", ""),
        ("GET", "/api/sandboxes/sbx_1/allowed-hosts", ""),
        ("DELETE", "/api/sandboxes/sbx_1", ""),
    ];
    assert_eq!(sent.len(), expected.len());
    for ((method, path, body), (want_method, want_path, want_body)) in sent.iter().zip(expected) {
        assert_eq!((method.as_str(), path.as_str()), (want_method, want_path));
        if want_body.is_empty() {
            assert!(body.is_empty(), "{path}: {body}");
        } else {
            let body: Value = serde_json::from_str(body).expect("json");
            let want: Value = serde_json::from_str(want_body).expect("json");
            assert_eq!(body, want, "{path}");
        }
    }
}

#[test]
fn refusals_map_to_exit_codes() {
    let stub = StubApi::start(|request| match request.path.as_str() {
        "/api/sandboxes/busy" => {
            Reply::json(409, json!({"error": "sandbox is busy", "code": "conflict"}))
        }
        "/api/sandboxes/foreign" => {
            Reply::json(403, json!({"error": "forbidden", "code": "forbidden"}))
        }
        "/api/sandboxes/down" => {
            Reply::json(503, json!({"error": "no worker", "code": "unavailable"}))
        }
        _ => Reply::json(
            401,
            json!({"error": "missing key", "code": "missing_api_key"}),
        ),
    });
    let code = |id: &str| {
        let output = oc_run(&["sandbox", "kill", id], &env(&stub));
        (output.status.code(), stderr_of(&output))
    };
    assert_eq!(code("busy").0, Some(5));
    let (status, message) = code("foreign");
    assert_eq!(status, Some(3));
    assert!(message.contains("OPENSANDBOX_API_KEY"), "{message}");
    let (status, message) = code("down");
    assert_eq!(status, Some(1));
    assert!(message.contains("no worker (unavailable)"), "{message}");
    let (status, message) = code("other");
    assert_eq!(status, Some(3));
    assert!(
        message.contains("osbd up") && message.contains("config.toml"),
        "{message}"
    );
}

const STREAM: &str = ": ping\n\nevent: osb.sandbox.sbx_1.created\ndata: {\"sandboxID\": \"sbx_1\"}\n\n: ping\n\nevent: osb.sandbox.sbx_1.exec_finished\ndata: {\"exitCode\":7}\n\n";

#[test]
fn events_print_one_line_each_and_stop_after_a_short_idle() {
    let stub = StubApi::start(|_| Reply::events(STREAM, Duration::from_secs(20)));
    let started = Instant::now();
    let listed = oc_run(&["events", "--subject", "osb.sandbox.>"], &env(&stub));
    assert!(listed.status.success(), "{}", stderr_of(&listed));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "returns after an idle second, not when the server closes"
    );
    assert_eq!(
        stdout_of(&listed),
        "osb.sandbox.sbx_1.created  {\"sandboxID\":\"sbx_1\"}\nosb.sandbox.sbx_1.exec_finished  {\"exitCode\":7}\n"
    );
    let request = &stub.requests()[0];
    assert_eq!(request.path, "/api/events?subject=osb.sandbox.%3E");
    assert_eq!(request.header("accept"), Some("text/event-stream"));

    let listed = oc_run(&["--json", "events"], &env(&stub));
    let first: Value = serde_json::from_str(stdout_of(&listed).lines().next().expect("a line"))
        .expect("a JSON line");
    assert_eq!(
        first,
        json!({"subject": "osb.sandbox.sbx_1.created", "data": {"sandboxID": "sbx_1"}})
    );
}

#[test]
fn following_events_reports_a_closed_stream() {
    let stub = StubApi::start(|_| Reply::events(STREAM, Duration::ZERO));
    let followed = oc_run(&["events", "--follow"], &env(&stub));
    assert_eq!(followed.status.code(), Some(1));
    assert_eq!(stdout_of(&followed).lines().count(), 2);
    assert!(
        stderr_of(&followed).contains("closed the event stream"),
        "{}",
        stderr_of(&followed)
    );
}

#[test]
fn a_secret_value_travels_only_in_the_request_body() {
    let canary = osb_testkit::Canary::new("oc-wire");
    let stub = StubApi::start(|request| match request.path.as_str() {
        "/api/projects/web/secrets/API_KEY" => Reply::json(
            200,
            json!({"name": "API_KEY", "status": "set", "version": 1, "refreshed": 0}),
        ),
        _ => Reply::json(
            400,
            json!({"error": "value: too large", "code": "invalid_input"}),
        ),
    });
    let set = |name: &str, url: &str| {
        let mut command = crate::oc_support::oc_command(
            &[
                "secret",
                "set",
                "web",
                name,
                "--allowed-host",
                "api.example.test",
            ],
            &[
                ("OPENSANDBOX_API_URL", url),
                ("OPENSANDBOX_API_KEY", "osb_wire"),
            ],
        );
        command.stdin(std::process::Stdio::piped());
        let mut child = command.spawn().expect("oc runs");
        // oc waits for stdin's end, so its argv can be read once exec has happened.
        let deadline = Instant::now() + Duration::from_secs(5);
        let argv = loop {
            let argv = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
            let argv = String::from_utf8_lossy(&argv).replace('\0', " ");
            if argv.contains("secret set web") || Instant::now() > deadline {
                break argv;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(argv.contains("secret set web"), "{argv}");
        canary.assert_absent("oc argv", &argv);
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(canary.value().as_bytes()).expect("write");
        drop(stdin);
        child.wait_with_output().expect("oc finishes")
    };
    let accepted = set("API_KEY", &stub.url);
    assert!(accepted.status.success(), "{}", stderr_of(&accepted));
    let refused = set("OTHER", &stub.url);
    assert_eq!(refused.status.code(), Some(2));
    let unreachable = set("API_KEY", "http://127.0.0.1:9");
    assert_eq!(unreachable.status.code(), Some(1));
    for output in [&accepted, &refused, &unreachable] {
        canary.assert_absent("oc stdout", &stdout_of(output));
        canary.assert_absent("oc stderr", &stderr_of(output));
    }
    let requests = stub.requests();
    assert_eq!(requests[0].json()["value"], canary.value());
    assert_eq!(
        requests[0].json()["allowedHosts"],
        json!(["api.example.test"])
    );
    for request in &requests {
        canary.assert_absent("request line", &request.path);
        canary.assert_absent("request headers", &format!("{:?}", request.headers));
    }
}

#[test]
fn a_spinner_runs_on_a_terminal_stderr_and_never_reaches_stdout() {
    let stub = StubApi::start(|_| {
        Reply::json(201, sandbox("sbx_1", "running")).after(Duration::from_millis(800))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let stdout_file = dir.path().join("stdout");
    let inner = format!(
        "'{}' create --project web > '{}'",
        env!("CARGO_BIN_EXE_oc"),
        stdout_file.display()
    );
    let (ran, terminal) = in_terminal(&inner, &env(&stub), None);
    assert!(ran.status.success(), "{}", stderr_of(&ran));
    assert_eq!(
        std::fs::read_to_string(&stdout_file).expect("stdout file"),
        "sbx_1\n"
    );
    assert!(
        terminal.contains("creating a sandbox in web"),
        "the spinner drew on the terminal: {terminal}"
    );

    let piped = oc_run(&["create", "--project", "web"], &env(&stub));
    assert!(piped.status.success());
    assert!(
        !stderr_of(&piped).contains("creating"),
        "no spinner into a pipe"
    );
}

#[test]
fn a_secret_typed_at_a_terminal_is_read_without_echo() {
    let canary = osb_testkit::Canary::new("oc-typed");
    let stub = StubApi::start(|_| {
        Reply::json(
            200,
            json!({"name": "API_KEY", "status": "set", "version": 1, "refreshed": 0}),
        )
    });
    let inner = format!("'{}' secret set web API_KEY", env!("CARGO_BIN_EXE_oc"));
    // Typed after oc has had time to turn echo off: the terminal echoes input when it arrives.
    let typed = Some((canary.value(), Duration::from_millis(1500)));
    let (ran, terminal) = in_terminal(&inner, &env(&stub), typed);
    assert!(ran.status.success(), "{terminal}");
    assert!(
        terminal.contains("value of API_KEY (input hidden): "),
        "{terminal}"
    );
    assert!(
        terminal.contains("secret API_KEY set (version 1)"),
        "{terminal}"
    );
    canary.assert_absent("the terminal", &terminal);
    assert_eq!(stub.requests()[0].json()["value"], canary.value());
}
