//! The whole chain of DESIGN.md through the API: project → secret → sandbox; inside, the env
//! holds only the sealed token, curl reaches the origin with the real key and gets the token
//! back (scrubbed), another host is refused; a secret update reaches the running sandbox;
//! checkpoint + restore, fork (fresh tokens, the parent's are dead there) and golden snapshot
//! each end with a 200 from the origin; delete leaves no namespace; and the canary is absent
//! from every API answer, every exec output and every database row.

use serde_json::json;

use osbd::testkit::{start_platform, PlatformOptions, LLM_HOST};

#[tokio::test]
async fn project_secret_sandbox_checkpoint_restore_fork_snapshot() {
    let platform = start_platform(PlatformOptions::new("osbl1", 1)).await;
    let canary = platform.canary.clone();
    let mut answers = String::new();
    platform.project_with_key("demo").await;

    let (status, sandbox) = platform
        .call(
            "POST",
            "/api/sandboxes",
            Some(json!({ "project": "demo", "envs": { "GREETING": "hello" } })),
        )
        .await;
    assert_eq!(status, 201, "{sandbox}");
    answers.push_str(&sandbox.to_string());
    assert_eq!(sandbox["status"], "running");
    assert_eq!(sandbox["egress"], "enforced");
    assert_eq!(sandbox["workerID"], "wa");
    let id = sandbox["sandboxID"].as_str().unwrap().to_owned();

    // The environment holds the token, never the value; user envs are plain.
    let (code, env, _) = platform.sh(&id, "env").await;
    assert_eq!(code, 0);
    answers.push_str(&env);
    let token = env
        .lines()
        .find_map(|line| line.strip_prefix("ANTHROPIC_API_KEY="))
        .expect("sealed env present")
        .to_owned();
    assert!(
        token.starts_with("osb_sealed_") && token.len() == 43,
        "{token}"
    );
    assert!(env.contains("GREETING=hello"));

    // curl: the origin receives the value; the echo comes back as the token.
    let (status_code, body) = platform.curl_origin(&id).await;
    answers.push_str(&body);
    assert_eq!(status_code, "200", "{body}");
    assert!(body.contains(&token), "echo scrubbed to the token: {body}");
    assert!(platform
        .origin
        .seen_keys
        .lock()
        .unwrap()
        .contains(&canary.value().to_owned()));

    // Another host is refused: by the explicit proxy (CONNECT 403, whose JSON reason Python
    // shows) and, off the proxy, by the resolver that knows only allowlisted names.
    let (_, refused, _) = platform
        .sh(&id, "curl -sS -m 10 https://example.org/ 2>&1; curl -sS -m 10 --noproxy '*' https://example.org/ 2>&1; true")
        .await;
    answers.push_str(&refused);
    assert!(refused.contains("response 403"), "{refused}");
    assert!(refused.contains("Could not resolve host"), "{refused}");

    // Narrowing the project allowlist closes the host for the running sandbox at once; widening
    // it again reopens it.
    let (status, patched) = platform
        .call(
            "PATCH",
            "/api/projects/demo",
            Some(json!({ "egressAllowlist": [] })),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let (_, closed, _) = platform
        .sh(&id, &format!("curl -sS -m 10 -o /dev/null https://{LLM_HOST}/v1/messages 2>&1; curl -sS -m 10 --noproxy '*' https://{LLM_HOST}/ 2>&1; true"))
        .await;
    assert!(closed.contains("response 403"), "proxy closed: {closed}");
    assert!(
        closed.contains("Could not resolve host"),
        "resolver closed: {closed}"
    );
    let (status, _) = platform
        .call(
            "PATCH",
            "/api/projects/demo",
            Some(json!({ "egressAllowlist": [LLM_HOST] })),
        )
        .await;
    assert_eq!(status, 200);
    let (status_code, _) = platform.curl_origin(&id).await;
    assert_eq!(status_code, "200", "reopened");

    // allowed-hosts shows the project's list and the secret's hosts.
    let (status, hosts) = platform
        .call("GET", &format!("/api/sandboxes/{id}/allowed-hosts"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(hosts["egressAllowlist"], json!([LLM_HOST]));
    assert_eq!(hosts["secrets"][0]["name"], "ANTHROPIC_API_KEY");

    // Update: the running sandbox's next request carries the new value, same token.
    let rotated = osb_testkit::Canary::new("rotated");
    platform.origin.set_real_key(rotated.value());
    let (status, set) = platform
        .call(
            "PUT",
            "/api/projects/demo/secrets/ANTHROPIC_API_KEY",
            Some(json!({ "value": rotated.value() })),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["refreshed"], 1, "{set}");
    answers.push_str(&set.to_string());
    let (status_code, body) = platform.curl_origin(&id).await;
    assert_eq!(status_code, "200", "{body}");
    assert!(body.contains(&token));

    // Checkpoint, change the layer, restore: the file is back, the token still works.
    platform.sh(&id, "echo before > /workspace/state.txt").await;
    let (status, checkpoint) = platform
        .call("POST", &format!("/api/sandboxes/{id}/checkpoints"), None)
        .await;
    assert_eq!(status, 201, "{checkpoint}");
    let checkpoint_id = checkpoint["checkpointID"].as_str().unwrap().to_owned();
    let (status, list) = platform
        .call("GET", &format!("/api/sandboxes/{id}/checkpoints"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["checkpointID"], checkpoint_id.as_str());
    platform.sh(&id, "echo after > /workspace/state.txt").await;
    let (status, restored) = platform
        .call(
            "POST",
            &format!("/api/sandboxes/{id}/restore"),
            Some(json!({ "checkpointId": checkpoint_id })),
        )
        .await;
    assert_eq!(status, 200, "{restored}");
    let (_, state, _) = platform.sh(&id, "cat /workspace/state.txt").await;
    assert_eq!(state.trim(), "before");
    let (status_code, body) = platform.curl_origin(&id).await;
    assert_eq!(status_code, "200", "after restore: {body}");

    // Fork: a new sandbox with the layer and a fresh token; the parent's token is dead there.
    let (status, fork) = platform
        .call(
            "POST",
            &format!("/api/sandboxes/from-checkpoint/{checkpoint_id}"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{fork}");
    let fork_id = fork["sandboxID"].as_str().unwrap().to_owned();
    let (_, fork_env, _) = platform.sh(&fork_id, "cat /workspace/state.txt; env").await;
    assert!(fork_env.contains("before"));
    assert!(!fork_env.contains(&token), "the fork has its own token");
    let (status_code, body) = platform.curl_origin(&fork_id).await;
    assert_eq!(status_code, "200", "fork: {body}");
    let (_, parent_token_in_fork, _) = platform
        .sh(
            &fork_id,
            &format!(
                "curl -sS -m 20 -X POST -H 'x-api-key: {token}' https://{LLM_HOST}/v1/messages"
            ),
        )
        .await;
    assert!(
        parent_token_in_fork.contains("unknown_token"),
        "{parent_token_in_fork}"
    );

    // Golden snapshot, then a sandbox booted from it.
    let (status, snapshot) = platform
        .call(
            "POST",
            "/api/snapshots",
            Some(json!({ "name": "golden-1", "sandboxId": id })),
        )
        .await;
    assert_eq!(status, 201, "{snapshot}");
    let (status, duplicate) = platform
        .call(
            "POST",
            "/api/snapshots",
            Some(json!({ "name": "golden-1", "sandboxId": id })),
        )
        .await;
    assert_eq!(status, 409, "{duplicate}");
    let (status, booted) = platform
        .call(
            "POST",
            "/api/sandboxes",
            Some(json!({ "project": "demo", "snapshot": "golden-1" })),
        )
        .await;
    assert_eq!(status, 201, "{booted}");
    let booted_id = booted["sandboxID"].as_str().unwrap().to_owned();
    let (_, state, _) = platform.sh(&booted_id, "cat /workspace/state.txt").await;
    assert_eq!(state.trim(), "before");
    let (status_code, body) = platform.curl_origin(&booted_id).await;
    assert_eq!(status_code, "200", "snapshot boot: {body}");

    // Idempotency-Key: a retry returns the same sandbox (200), another body with it is 409.
    let key = [("Idempotency-Key", "retry-me-1")];
    let body = json!({ "project": "demo" });
    let (first, created) = platform
        .call_with("POST", "/api/sandboxes", Some(body.clone()), &key)
        .await;
    let (second, replayed) = platform
        .call_with("POST", "/api/sandboxes", Some(body), &key)
        .await;
    assert_eq!((first, second), (201, 200), "{created} {replayed}");
    assert_eq!(created["sandboxID"], replayed["sandboxID"]);
    let (status, conflict) = platform
        .call_with(
            "POST",
            "/api/sandboxes",
            Some(json!({ "project": "demo", "cpuCount": 2 })),
            &key,
        )
        .await;
    assert_eq!(status, 409, "{conflict}");
    let retried_id = created["sandboxID"].as_str().unwrap().to_owned();

    // List, then delete everything; a second delete is harmless.
    let (status, all) = platform.call("GET", "/api/sandboxes", None).await;
    assert_eq!(status, 200);
    assert_eq!(all.as_array().unwrap().len(), 4);
    answers.push_str(&all.to_string());
    for sandbox in [&id, &fork_id, &booted_id, &retried_id] {
        let (status, gone) = platform
            .call("DELETE", &format!("/api/sandboxes/{sandbox}"), None)
            .await;
        assert_eq!(status, 200, "{gone}");
        assert_eq!(gone["status"], "destroyed");
    }
    let (status, again) = platform
        .call("DELETE", &format!("/api/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, 200, "{again}");

    for (prefix, data_dir) in &platform.prefixes {
        let census = osb_vm::netns::census_worker(prefix, data_dir)
            .await
            .unwrap();
        assert!(census.is_empty(), "leftovers: {census:?}");
    }
    canary.assert_absent("API answers and exec output", &answers);
    rotated.assert_absent("API answers and exec output", &answers);
    let rows = platform.store.dump_all_rows_as_text().await.unwrap();
    canary.assert_absent("database rows", &rows);
    rotated.assert_absent("database rows", &rows);
    platform.stop().await;
}

/// `timeoutSec` is a promise: a sandbox past it is destroyed (namespace gone, row `destroyed`,
/// an `expired` event) without anyone asking.
#[tokio::test]
async fn a_sandbox_past_its_timeout_is_destroyed() {
    let platform = start_platform(PlatformOptions::new("osbl2", 5)).await;
    platform.project_with_key("demo").await;
    let (status, sandbox) = platform
        .call(
            "POST",
            "/api/sandboxes",
            Some(json!({ "project": "demo", "timeoutSec": 2 })),
        )
        .await;
    assert_eq!(status, 201, "{sandbox}");
    let id = sandbox["sandboxID"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, now) = platform
            .call("GET", &format!("/api/sandboxes/{id}"), None)
            .await;
        if now["status"] == "destroyed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {now}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    for (prefix, data_dir) in &platform.prefixes {
        let census = osb_vm::netns::census_worker(prefix, data_dir)
            .await
            .unwrap();
        assert!(census.is_empty(), "leftovers: {census:?}");
    }
    platform.stop().await;
}

/// A worker that restarts comes back under the same name with a new id and none of its old
/// sandboxes: the control plane reports exactly those (failed, "restarted") and keeps the ones
/// created on the new process running; new sandboxes reach the new process at once.
#[tokio::test]
async fn a_restarted_worker_fails_only_the_sandboxes_it_lost() {
    let mut platform = start_platform(PlatformOptions::new("osbl3", 7)).await;
    platform.project_with_key("demo").await;
    let create = async |platform: &osbd::testkit::Platform| {
        let (status, sandbox) = platform
            .call("POST", "/api/sandboxes", Some(json!({ "project": "demo" })))
            .await;
        assert_eq!(status, 201, "{sandbox}");
        sandbox["sandboxID"].as_str().unwrap().to_owned()
    };
    let before = create(&platform).await;
    platform.restart_worker(0).await;
    let after = create(&platform).await;
    let (code, _) = platform.curl_origin(&after).await;
    assert_eq!(code, "200");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, old) = platform
            .call("GET", &format!("/api/sandboxes/{before}"), None)
            .await;
        if old["status"] == "failed" {
            assert!(
                old["failureReason"].as_str().unwrap().contains("restarted"),
                "{old}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {old}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let (_, new) = platform
        .call("GET", &format!("/api/sandboxes/{after}"), None)
        .await;
    assert_eq!(new["status"], "running", "{new}");
    let (code, _) = platform.curl_origin(&after).await;
    assert_eq!(code, "200");
    platform.stop().await;
}

/// `POST /exec/stream` hands output over while the command still runs: the first line arrives,
/// and a second exec sees the first command still running, before its last line and exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_output_while_the_command_runs() {
    use base64::Engine;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let platform = start_platform(PlatformOptions::new("osbl4", 8)).await;
    platform.project_with_key("demo").await;
    let (status, sandbox) = platform
        .call("POST", "/api/sandboxes", Some(json!({ "project": "demo" })))
        .await;
    assert_eq!(status, 201, "{sandbox}");
    let id = sandbox["sandboxID"].as_str().unwrap().to_owned();

    let body = json!({ "cmd": ["sh", "-c", "echo first; sleep 30 & echo $! > /tmp/sleeper; wait; echo second"] })
        .to_string();
    let authority = platform.api_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let request = format!(
        "POST /api/sandboxes/{id}/exec/stream HTTP/1.1\r\nHost: {authority}\r\nX-API-Key: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        platform.api_key,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut lines = BufReader::new(stream).lines();
    let decode = |line: &str| {
        let chunk: serde_json::Value = serde_json::from_str(line).ok()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(chunk["stdout"].as_str()?)
            .ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    };
    // Headers, then chunked framing lines interleaved with the JSON lines.
    let mut first = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(text) = decode(&line) {
            first = Some(text);
            break;
        }
    }
    assert_eq!(first.as_deref(), Some("first\n"));
    // The command is still running: end it from a second exec.
    let (code, _, stderr) = platform.sh(&id, "kill $(cat /tmp/sleeper)").await;
    assert_eq!(code, 0, "the sleeper was still running: {stderr}");
    let mut rest = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(text) = decode(&line) {
            rest.push_str(&text);
        }
        if line.contains("exitCode") {
            assert!(line.contains("\"exitCode\":0"), "{line}");
            break;
        }
    }
    assert_eq!(rest, "second\n");
    platform.stop().await;
}
