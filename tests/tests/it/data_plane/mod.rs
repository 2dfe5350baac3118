//! The whole data plane on one machine, as root, on both runtimes: a sandbox (osb-vm: a network
//! namespace, or a QEMU microVM on a tap in its own namespace) whose egress goes through the
//! real sealing proxy (osb-proxy) to a local TLS origin. One body of checks runs on each. Real clients
//! inside the sandbox (`curl`, Python `urllib`) send the sealed token; the origin receives the
//! real value only for the allowed host; the sandbox only ever sees the token; other hosts are
//! refused with a readable reason. Both paths are covered: the explicit proxy (`HTTPS_PROXY`,
//! which the sandbox env sets) and the transparent redirect of tcp/443 (`--noproxy '*'`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use osb_proto::{HostPattern, SandboxId, SealedToken};
use osb_proxy::{
    AddressPolicy, ChannelSink, ProxyConfig, ProxyEvent, SealingProxy, SecretSpec, SecretValue,
    SessionSpec,
};
use osb_testkit::{Canary, LlmOrigin};
use osb_vm::microvm::{MicroVmConfig, MicroVmRuntime};
use osb_vm::netns::reap_worker;
use osb_vm::{
    ExecRequest, Ipv4Pool, NetnsConfig, NetnsRuntime, ProxyEndpoints, RecordingSink, Runtime,
    RuntimeKind, SandboxSpec, SealedEnv,
};

const HOST: &str = "api.example.test";

/// Reaps this test's namespaces, veths, rules and mounts even when it panics.
struct Reap {
    prefix: String,
    data_dir: std::path::PathBuf,
}

impl Drop for Reap {
    fn drop(&mut self) {
        let (prefix, data_dir) = (self.prefix.clone(), self.data_dir.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|runtime| runtime.block_on(reap_worker(&prefix, &data_dir)))
        })
        .join();
    }
}

fn token() -> SealedToken {
    SealedToken::from_random_bytes(*uuid::Uuid::new_v4().as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_netns_sandbox_uses_a_secret_it_never_sees() {
    a_sandbox_uses_a_secret_it_never_sees(RuntimeKind::Netns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microvm_sandbox_uses_a_secret_it_never_sees() {
    a_sandbox_uses_a_secret_it_never_sees(RuntimeKind::Microvm).await;
}

/// A runtime of `kind` with its own prefix, data dir and pool.
async fn start_runtime(
    kind: RuntimeKind,
    prefix: &str,
    data_dir: &std::path::Path,
    pool: Ipv4Pool,
) -> Arc<dyn Runtime> {
    let sink = Arc::new(RecordingSink::default());
    match kind {
        RuntimeKind::Netns => {
            let mut config = NetnsConfig::new(prefix, data_dir);
            config.address_pool = pool;
            Arc::new(
                NetnsRuntime::new(config, sink)
                    .await
                    .expect("netns runtime (root, nftables)"),
            )
        }
        RuntimeKind::Microvm => {
            let mut config = MicroVmConfig::new(prefix, data_dir);
            config.host.address_pool = pool;
            config.disk_mb = 1024;
            Arc::new(
                MicroVmRuntime::new(config, sink)
                    .await
                    .expect("microVM runtime (root, qemu, guest from scripts/build-guest.sh)"),
            )
        }
    }
}

async fn a_sandbox_uses_a_secret_it_never_sees(kind: RuntimeKind) {
    let canary = Canary::new("data-plane");
    let temp = tempfile::tempdir().unwrap();
    // A microVM's QEMU runs as an unprivileged uid: it must pass through to its directory.
    std::fs::set_permissions(
        temp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    // The origin gets a loopback address of its own, so port 443 is free for it.
    // (One per runtime: both tests run at the same time.)
    let origin_ip = match kind {
        RuntimeKind::Netns => Ipv4Addr::new(127, 77, 3, 9),
        RuntimeKind::Microvm => Ipv4Addr::new(127, 77, 3, 10),
    };
    let origin = LlmOrigin::start(
        HOST,
        SocketAddr::from((origin_ip, 443)),
        canary.value().to_owned(),
    )
    .await;

    let mut config = ProxyConfig::new(temp.path().join("proxy"));
    config.explicit_listen = SocketAddr::from(([0, 0, 0, 0], 0));
    config.transparent_listen = Some(SocketAddr::from(([0, 0, 0, 0], 0)));
    config.addresses = AddressPolicy {
        allow_loopback: true,
        allow_private: false,
    };
    config.resolve_overrides = HashMap::from([(HOST.to_owned(), IpAddr::V4(origin_ip))]);
    config.use_system_roots = false;
    config.extra_upstream_ca_pems = vec![origin.ca_pem.clone().into_bytes()];
    let (sink, mut events) = ChannelSink::new(1024);
    let proxy = SealingProxy::start(config, Arc::new(sink)).await.unwrap();
    let endpoints = ProxyEndpoints {
        transparent_port: proxy.transparent_addr().unwrap().port(),
        explicit_port: proxy.explicit_addr().port(),
    };

    let (prefix, pool) = match kind {
        RuntimeKind::Netns => ("osbdp01", "100.100.201.0/24"),
        RuntimeKind::Microvm => ("osbmdp01", "100.82.201.0/24"),
    };
    let prefix = prefix.to_owned();
    let pool: Ipv4Pool = pool.parse().unwrap();
    let data_dir = temp.path().join("worker");
    let _reap = Reap {
        prefix: prefix.clone(),
        data_dir: data_dir.clone(),
    };
    let dns_answer = pool.dns_answer();
    let runtime = start_runtime(kind, &prefix, &data_dir, pool).await;

    let sealed = token();
    let mut spec = SandboxSpec::new(SandboxId::new(), endpoints, proxy.ca_cert_pem());
    spec.memory_mb = 256;
    spec.runtime = kind;
    spec.egress_allowlist = vec![HOST.to_owned()];
    spec.sealed_envs.push(SealedEnv {
        name: "ANTHROPIC_API_KEY".to_owned(),
        token: sealed,
    });
    let sandbox = spec.id;
    let info = runtime.create(spec).await.expect("sandbox");
    proxy
        .register_session(SessionSpec {
            sandbox_id: sandbox,
            source_ip: IpAddr::V4(info.address),
            egress_allowlist: vec![HostPattern::parse(HOST).unwrap()],
            secrets: vec![SecretSpec {
                name: "ANTHROPIC_API_KEY".to_owned(),
                token: sealed,
                value: SecretValue::new(canary.value().as_bytes().to_vec()),
                allowed_hosts: vec![],
                version: 0,
            }],
        })
        .unwrap();

    let sh = |script: &str| {
        let request = ExecRequest::shell(script);
        let runtime = &runtime;
        async move { runtime.exec(sandbox, request).await.expect("exec") }
    };
    let mut seen_by_sandbox = String::new();

    // The environment holds the token only.
    let env = sh("env").await;
    seen_by_sandbox.push_str(&env.stdout);
    assert!(
        env.stdout.contains(&format!("ANTHROPIC_API_KEY={sealed}")),
        "{}",
        env.stdout
    );

    // Explicit proxy path (HTTPS_PROXY from the sandbox env), then the transparent redirect.
    for (path, flags) in [("explicit", ""), ("transparent", "--noproxy '*'")] {
        let out = sh(&format!(
            "curl -sS {flags} -w '\\n%{{http_code}}' -H \"x-api-key: $ANTHROPIC_API_KEY\" https://{HOST}/v1/messages"
        ))
        .await;
        seen_by_sandbox.push_str(&out.stdout);
        seen_by_sandbox.push_str(&out.stderr);
        assert!(
            out.stdout.trim_end().ends_with("200"),
            "{path}: {} {}",
            out.stdout,
            out.stderr
        );
        assert!(
            out.stdout.contains(sealed.as_str()),
            "{path}: the echoed key comes back as the token: {}",
            out.stdout
        );
    }

    // Python urllib, trusting the proxy CA through the env the runtime set.
    let script = format!(
        "import os, urllib.request\n\
         r = urllib.request.Request('https://{HOST}/v1/messages', headers={{'x-api-key': os.environ['ANTHROPIC_API_KEY']}})\n\
         print(urllib.request.urlopen(r).read().decode())"
    );
    let py = runtime
        .exec(
            sandbox,
            ExecRequest::new(["python3", "-c", script.as_str()]),
        )
        .await
        .unwrap();
    seen_by_sandbox.push_str(&py.stdout);
    seen_by_sandbox.push_str(&py.stderr);
    assert_eq!(py.exit_code, 0, "{} {}", py.stdout, py.stderr);
    assert!(py.stdout.contains(sealed.as_str()), "{}", py.stdout);

    // A host that is not allowed, on the transparent path (the resolver would not even answer
    // the name, so curl is told where to go): the proxy refuses on the SNI, before it mints a
    // certificate for the host, with a TLS access_denied alert (ADR 0110).
    let refused = sh(&format!(
        "curl -sS --noproxy '*' --resolve other.example.test:443:{dns_answer} -H \"x-api-key: $ANTHROPIC_API_KEY\" https://other.example.test/"
    ))
    .await;
    seen_by_sandbox.push_str(&refused.stdout);
    seen_by_sandbox.push_str(&refused.stderr);
    assert!(
        refused.stderr.contains("access denied"),
        "{} {}",
        refused.stdout,
        refused.stderr
    );
    // Through the explicit proxy the refusal is a 403 to the CONNECT, before any TLS.
    let refused = sh("curl -sS https://other.example.test/ -o /dev/null -w '%{http_code}'").await;
    seen_by_sandbox.push_str(&refused.stdout);
    seen_by_sandbox.push_str(&refused.stderr);
    assert!(
        refused.stderr.contains("403"),
        "{} {}",
        refused.stdout,
        refused.stderr
    );

    // The upstream got the real value, for the allowed host only; the sandbox never did.
    let seen = origin.seen_keys.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{} requests reached the origin", seen.len());
    assert!(seen.iter().all(|key| key == canary.value()));
    canary.assert_absent("what the sandbox received", &seen_by_sandbox);
    // Everything the sandbox can write (its system tree is the host's, read-only).
    let files =
        sh("grep -rl osbcanary /workspace /tmp /home /etc /root /var 2>/dev/null | head -5; true")
            .await;
    assert!(
        files.stdout.trim().is_empty(),
        "canary in sandbox files: {}",
        files.stdout
    );

    // Decisions were events, naming the secret and host, never the value or the token.
    let mut rendered = String::new();
    let mut used = 0;
    while let Ok(event) = events.try_recv() {
        if matches!(event, ProxyEvent::SecretUsed { .. }) {
            used += 1;
        }
        rendered.push_str(&format!("{event:?}"));
    }
    assert!(used >= 3, "secret_used events: {rendered}");
    canary.assert_absent("proxy events", &rendered);
    assert!(
        !rendered.contains(sealed.as_str()),
        "a token reached an event"
    );

    // Fork: the parent saves its token in a file; the fork boots from the parent's layer with
    // a fresh token. Inside the fork the parent's token is dead (refused by the proxy with a
    // reason), and the fork's own token works.
    sh("echo \"$ANTHROPIC_API_KEY\" > /workspace/saved-token").await;
    let checkpoint = runtime.checkpoint(sandbox).await.unwrap();
    let fork_token = token();
    let mut fork_spec = SandboxSpec::new(SandboxId::new(), endpoints, proxy.ca_cert_pem());
    fork_spec.memory_mb = 256;
    fork_spec.runtime = kind;
    fork_spec.egress_allowlist = vec![HOST.to_owned()];
    fork_spec.sealed_envs.push(SealedEnv {
        name: "ANTHROPIC_API_KEY".to_owned(),
        token: fork_token,
    });
    let fork = fork_spec.id;
    let fork_info = runtime
        .fork(checkpoint.checkpoint_id, fork_spec)
        .await
        .unwrap();
    proxy
        .register_session(SessionSpec {
            sandbox_id: fork,
            source_ip: IpAddr::V4(fork_info.address),
            egress_allowlist: vec![HostPattern::parse(HOST).unwrap()],
            secrets: vec![SecretSpec {
                name: "ANTHROPIC_API_KEY".to_owned(),
                token: fork_token,
                value: SecretValue::new(canary.value().as_bytes().to_vec()),
                allowed_hosts: vec![],
                version: 0,
            }],
        })
        .unwrap();
    let in_fork = |script: String| {
        let runtime = &runtime;
        async move {
            runtime
                .exec(fork, ExecRequest::shell(&script))
                .await
                .expect("exec in fork")
        }
    };
    let dead = in_fork(format!(
        "curl -sS -w '\\n%{{http_code}}' -H \"x-api-key: $(cat /workspace/saved-token)\" https://{HOST}/v1/messages"
    ))
    .await;
    assert!(
        dead.stdout.trim_end().ends_with("403"),
        "the parent's token is dead in the fork: {} {}",
        dead.stdout,
        dead.stderr
    );
    assert!(dead.stdout.contains("unknown_token"), "{}", dead.stdout);
    let live = in_fork(format!(
        "curl -sS -w '\\n%{{http_code}}' -H \"x-api-key: $ANTHROPIC_API_KEY\" https://{HOST}/v1/messages"
    ))
    .await;
    assert!(
        live.stdout.trim_end().ends_with("200"),
        "{} {}",
        live.stdout,
        live.stderr
    );
    assert!(live.stdout.contains(fork_token.as_str()));
    canary.assert_absent(
        "what the fork received",
        &format!(
            "{}{}{}{}",
            dead.stdout, dead.stderr, live.stdout, live.stderr
        ),
    );
    assert_eq!(
        origin.seen_keys.lock().unwrap().len(),
        4,
        "the dead token never reached the origin"
    );

    runtime.destroy(fork).await.unwrap();
    runtime.destroy(sandbox).await.unwrap();
    proxy.shutdown();
}
