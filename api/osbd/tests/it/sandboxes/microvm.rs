//! A microVM sandbox through the REST API (issue 16 item 3): a project whose runtime is
//! `microvm` gets its sandboxes on a worker that advertises it, and the netns promises hold
//! there — the guest's environment holds only the sealed token, a request from inside reaches
//! the origin with the real value and the echo comes back scrubbed, another host is refused,
//! and destroy leaves nothing of the VM (no QEMU, tap or namespace under its prefix). The
//! per-create field overrides the project's default. One TCG boot; runs in the serial
//! `microvm` nextest group.

use serde_json::json;

use osbd::testkit::{start_platform, PlatformOptions};

#[tokio::test]
async fn a_microvm_project_gets_microvm_sandboxes_through_the_api() {
    let mut options = PlatformOptions::new("osbm1", 61);
    options.microvm = true;
    let platform = start_platform(options).await;
    let canary = platform.canary.clone();
    platform.project_with_key("vm").await;
    let (status, project) = platform
        .call(
            "PATCH",
            "/api/projects/vm",
            Some(json!({ "runtime": "microvm" })),
        )
        .await;
    assert_eq!(status, 200, "{project}");
    assert_eq!(project["runtime"], "microvm", "{project}");

    let (status, sandbox) = platform
        .call("POST", "/api/sandboxes", Some(json!({ "project": "vm" })))
        .await;
    assert_eq!(status, 201, "{sandbox}");
    assert_eq!(sandbox["runtime"], "microvm", "{sandbox}");
    assert_eq!(sandbox["egress"], "enforced", "{sandbox}");
    let id = sandbox["sandboxID"].as_str().unwrap().to_owned();

    let (code, env, _) = platform.sh(&id, "env").await;
    assert_eq!(code, 0, "{env}");
    let token = env
        .lines()
        .find_map(|line| line.strip_prefix("ANTHROPIC_API_KEY="))
        .expect("sealed env in the guest")
        .to_owned();
    assert!(token.starts_with("osb_sealed_"), "{token}");
    assert!(!env.contains(canary.value()), "the value is in the guest");

    let (status_code, body) = platform.curl_origin(&id).await;
    assert_eq!(status_code, "200", "{body}");
    assert!(body.contains(&token), "echo scrubbed to the token: {body}");
    assert!(!body.contains(canary.value()));
    let (_, refused, _) = platform
        .sh(&id, "curl -sS -m 10 https://example.org/ 2>&1; true")
        .await;
    assert!(refused.contains("403"), "{refused}");

    // The per-create field wins over the project's default.
    let (status, netns) = platform
        .call(
            "POST",
            "/api/sandboxes",
            Some(json!({ "project": "vm", "runtime": "netns" })),
        )
        .await;
    assert_eq!(status, 201, "{netns}");
    assert_eq!(netns["runtime"], "netns", "{netns}");
    let netns_id = netns["sandboxID"].as_str().unwrap().to_owned();

    for sandbox in [&id, &netns_id] {
        let (status, gone) = platform
            .call("DELETE", &format!("/api/sandboxes/{sandbox}"), None)
            .await;
        assert!(status == 200 || status == 204, "{gone}");
    }
    let (prefix, data_dir) = &platform.prefixes[0];
    let vm_census = osb_vm::netns::census_worker(&format!("{prefix}v"), &data_dir.join("microvm"))
        .await
        .unwrap();
    assert!(
        vm_census.is_empty(),
        "microVM host objects left: {vm_census:?}"
    );
    let census = osb_vm::netns::census_worker(prefix, data_dir)
        .await
        .unwrap();
    assert!(census.is_empty(), "netns host objects left: {census:?}");
}
