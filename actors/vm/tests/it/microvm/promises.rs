//! One microVM through every promise of the netns runtime, as named checks on one boot (plus
//! the boots restore, fork and a golden snapshot need).

use std::time::{Duration, Instant};

use osb_vm::{
    BootLayer, ExecChunk, ExecRequest, ProxyEndpoints, Runtime, RuntimeError, RuntimeKind,
    SandboxState, SealedEnv,
};

use super::{host_kernel, qemu_processes, vm_spec, VmWorker};
use crate::support::{connect_stand_in, free_port, token, unused_proxy, TestPki, TlsStandIn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microvm_keeps_the_netns_promises() {
    let worker = VmWorker::start(1).await;
    eprintln!("accelerator: {:?}", worker.runtime.accel());
    let pki = TestPki::new("secure.test");
    // The transparent listener is a TLS stand-in (the guest's curl/python/node must trust the
    // CA the runtime installed); the explicit listener splices CONNECTs to it.
    let transparent_port = free_port();
    let _tls = TlsStandIn::start(transparent_port, &pki.leaf_cert(), &pki.leaf_key()).await;
    let explicit = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let proxy = ProxyEndpoints {
        transparent_port,
        explicit_port: explicit.local_addr().expect("addr").port(),
    };
    let mut connects = connect_stand_in(explicit, transparent_port).await;
    let sealed = token();
    let mut spec = vm_spec(proxy, &pki.ca_pem);
    spec.egress_allowlist = vec!["secure.test".into(), "api.allowed.test".into()];
    spec.sealed_envs.push(SealedEnv {
        name: "API_KEY".into(),
        token: sealed,
    });
    spec.user_envs.insert("MODE".into(), "plain".into());
    let id = spec.id;
    let booted = Instant::now();
    let info = worker.runtime.create(spec).await.expect("microVM create");
    eprintln!("create→ready {:?}", booted.elapsed());
    assert_eq!(info.state, SandboxState::Running);
    assert!(worker.pool.contains(info.address));

    check!("sealed env only", {
        let env = worker.sh(id, "env; id -u").await;
        assert!(env.stdout.contains(&format!("API_KEY={sealed}")), "{env:?}");
        assert!(env.stdout.contains("MODE=plain"), "{env:?}");
        assert!(env
            .stdout
            .contains("SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"));
        assert!(env
            .stdout
            .contains("NODE_EXTRA_CA_CERTS=/etc/ssl/certs/osb-proxy-ca.pem"));
        assert!(
            env.stdout.trim_end().ends_with("1000"),
            "runs as the sandbox user: {env:?}"
        );
    });

    check!("QEMU runs as an unprivileged uid of its own", {
        let pids = qemu_processes(&worker.prefix);
        assert_eq!(pids.len(), 1, "{pids:?}");
        let status = std::fs::read_to_string(format!("/proc/{}/status", pids[0])).expect("status");
        let field = |name: &str| {
            status
                .lines()
                .find(|line| line.starts_with(name))
                .map(|line| {
                    line[name.len()..]
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let uids = field("Uid:");
        let expected = osb_vm::microvm::config::DEFAULT_QEMU_UID_BASE.to_string();
        assert_eq!(uids.len(), 4, "{status}");
        assert!(
            uids.iter().all(|uid| uid.parse::<u32>().unwrap_or(0)
                > expected.parse::<u32>().unwrap_or(u32::MAX) - 1),
            "{uids:?}"
        );
        assert!(field("Gid:").iter().all(|gid| gid == &uids[0]), "{status}");
        assert_eq!(
            field("CapEff:"),
            vec!["0000000000000000".to_owned()],
            "{status}"
        );
        assert_eq!(
            field("CapBnd:"),
            vec!["0000000000000000".to_owned()],
            "{status}"
        );
        assert_eq!(field("NoNewPrivs:"), vec!["1".to_owned()], "{status}");
        assert_eq!(
            field("Seccomp:"),
            vec!["2".to_owned()],
            "QEMU's seccomp filter is on: {status}"
        );
    });

    check!("exec semantics", {
        let out = worker.sh(id, "echo out; echo err >&2; exit 3").await;
        assert_eq!(
            (out.exit_code, out.stdout.as_str(), out.stderr.as_str()),
            (3, "out\n", "err\n")
        );
        let mut request = ExecRequest::new(["pwd"]);
        request.cwd = Some("/tmp".into());
        request.env.insert("EXTRA".into(), "1".into());
        assert_eq!(
            worker.runtime.exec(id, request).await.expect("exec").stdout,
            "/tmp\n"
        );
        let missing = worker
            .runtime
            .exec(id, ExecRequest::new(["no-such-program"]))
            .await
            .expect("exec");
        assert_eq!(missing.exit_code, 127, "{missing:?}");
        let mut bad_cwd = ExecRequest::new(["true"]);
        bad_cwd.cwd = Some("/nope".into());
        assert_eq!(
            worker
                .runtime
                .exec(id, bad_cwd)
                .await
                .expect("exec")
                .exit_code,
            125
        );
        let empty = worker
            .runtime
            .exec(id, ExecRequest::new(Vec::<String>::new()))
            .await;
        assert!(matches!(empty, Err(RuntimeError::EmptyCommand)));
        let mut bounded = ExecRequest::shell("head -c 100000 /dev/zero | tr '\\0' x");
        bounded.max_output_bytes = 1000;
        let big = worker.runtime.exec(id, bounded).await.expect("exec");
        assert!(
            big.stdout_truncated && big.stdout.contains("99000 more bytes"),
            "{}",
            big.stdout.len()
        );
        let mut slow = ExecRequest::shell("sleep 30 & sleep 30; echo never");
        slow.timeout = Duration::from_secs(2);
        let timed = worker.runtime.exec(id, slow).await.expect("exec");
        assert!(
            timed.timed_out && timed.exit_code == 124 && !timed.stdout.contains("never"),
            "{timed:?}"
        );
    });

    check!("the agent channel and console are root's only", {
        let out = worker.sh(id, "ls /dev/vport* >/dev/null && for f in /dev/vport* /dev/console /dev/ttyS0; do (: < $f) 2>/dev/null && echo \"OPENED $f\"; (: > $f) 2>/dev/null && echo \"WROTE $f\"; done; ls /.osb 2>&1 | tail -1").await;
        assert!(
            !out.stdout.contains("OPENED") && !out.stdout.contains("WROTE"),
            "{out:?}"
        );
        assert!(out.stdout.contains("Permission denied"), "{out:?}");
    });

    check!("concurrent execs stay apart", {
        let one = worker.runtime.exec(
            id,
            ExecRequest::shell("for i in 1 2 3 4 5; do echo one-$i; sleep 0.1; done"),
        );
        let two = worker.runtime.exec(
            id,
            ExecRequest::shell("for i in 1 2 3 4 5; do echo two-$i >&2; sleep 0.1; done; exit 2"),
        );
        let (one, two) = tokio::join!(one, two);
        let (one, two) = (one.expect("exec"), two.expect("exec"));
        assert_eq!(one.stdout, "one-1\none-2\none-3\none-4\none-5\n");
        assert_eq!((two.exit_code, two.stdout.as_str()), (2, ""));
        assert_eq!(two.stderr.lines().count(), 5, "{two:?}");
    });

    check!("streaming exec", {
        let mut stream = worker
            .runtime
            .exec_streaming(
                id,
                ExecRequest::shell("echo a; sleep 1; echo b >&2; exit 4"),
            )
            .await
            .expect("stream");
        let mut seen = Vec::new();
        while let Some(chunk) = stream.chunks.recv().await {
            seen.push(chunk);
        }
        assert!(
            seen.contains(&ExecChunk::Stdout(b"a\n".to_vec())),
            "{seen:?}"
        );
        assert!(
            seen.contains(&ExecChunk::Stderr(b"b\n".to_vec())),
            "{seen:?}"
        );
        assert_eq!(
            seen.last(),
            Some(&ExecChunk::Exited {
                exit_code: 4,
                timed_out: false
            })
        );
    });

    check!("proxy CA in the guest trust store", {
        let no_proxy = "env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy";
        let curl = worker
            .sh(
                id,
                &format!(
                    "{no_proxy} curl -sS -o /dev/null -w '%{{http_code}}' https://secure.test/"
                ),
            )
            .await;
        assert_eq!(curl.stdout.trim(), "200", "{curl:?}");
        let python = worker.sh(id, &format!("{no_proxy} python3 -c 'import urllib.request; print(urllib.request.urlopen(\"https://secure.test/\", timeout=20).status)'")).await;
        assert_eq!(python.stdout.trim(), "200", "{python:?}");
        let node = worker.sh(id, &format!("{no_proxy} node -e 'require(\"https\").get(\"https://secure.test/\", r => {{ console.log(r.statusCode); r.resume(); }}).on(\"error\", e => console.log(e.message))'")).await;
        assert_eq!(node.stdout.trim(), "200", "{node:?}");
        let store = worker.sh(id, &format!("{no_proxy} env -u SSL_CERT_FILE -u CURL_CA_BUNDLE curl -sS -o /dev/null -w '%{{http_code}}' https://secure.test/")).await;
        assert_eq!(
            store.stdout.trim(),
            "200",
            "the system store alone: {store:?}"
        );
    });

    check!("explicit proxy sees the guest's address", {
        let curl = worker
            .sh(
                id,
                "curl -sS -o /dev/null -w '%{http_code}' https://secure.test/",
            )
            .await;
        assert_eq!(curl.stdout.trim(), "200", "{curl:?}");
        let (peer, target) = connects.recv().await.expect("a CONNECT");
        assert_eq!(peer.ip(), std::net::IpAddr::V4(info.address));
        assert_eq!(target, "secure.test:443");
    });

    check!("bypass attempts fail", {
        let host_tcp = tokio::net::TcpListener::bind("0.0.0.0:0")
            .await
            .expect("bind");
        let tcp_port = host_tcp.local_addr().expect("addr").port();
        let host_udp = tokio::net::UdpSocket::bind("0.0.0.0:0")
            .await
            .expect("bind");
        let udp_port = host_udp.local_addr().expect("addr").port();
        let script = format!(
            r#"
import socket
def tcp(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close(); return "open"
    except OSError:
        return "blocked"
def udp(host, port, payload=b"x", wait=2):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(wait)
    try:
        s.sendto(payload, (host, port)); s.recvfrom(512); return "answered"
    except OSError:
        return "blocked"
def icmp(host):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP); s.settimeout(2)
    try:
        s.sendto(bytes.fromhex("0800000000010001") + b"osb", (host, 0)); s.recvfrom(512); return "answered"
    except OSError:
        return "blocked"
query = bytes.fromhex("abcd01000001000000000000") + b"\x03api\x07allowed\x04test\x00\x00\x01\x00\x01"
print("tcp-host-port", tcp("{gw}", {tcp_port}))
print("tcp-ssh", tcp("{gw}", 22))
print("udp-host-port", udp("{gw}", {udp_port}))
print("quic-443", udp("{gw}", 443))
print("dns-other-server", udp("{answer}", 53, query))
print("dns-worker", udp("{gw}", 53, query, wait=10))
print("icmp-gateway", icmp("{gw}"))
print("icmp-dns-answer", icmp("{answer}"))
print("icmp-own-loopback", icmp("127.0.0.1"))
"#,
            gw = info.gateway,
            answer = worker.pool.dns_answer(),
        );
        let out = worker
            .runtime
            .exec(id, ExecRequest::new(["python3", "-c", script.as_str()]))
            .await
            .expect("exec");
        assert_eq!(out.exit_code, 0, "{out:?}");
        for line in [
            "tcp-host-port blocked",
            "tcp-ssh blocked",
            "udp-host-port blocked",
            "quic-443 blocked",
            "dns-other-server blocked",
            "dns-worker answered",
            "icmp-gateway blocked",
            "icmp-dns-answer blocked",
            "icmp-own-loopback answered",
        ] {
            assert!(out.stdout.contains(line), "expected {line:?} in {out:?}");
        }
        let mut buffer = [0u8; 64];
        assert!(
            host_udp.try_recv_from(&mut buffer).is_err(),
            "a UDP datagram reached the host"
        );
        let v6 = worker.sh(id, "ip -6 route show default | grep -c default; python3 -c 'import socket; socket.create_connection((\"2001:db8::1\", 443), timeout=2)' 2>&1 | tail -1").await;
        assert!(v6.stdout.starts_with('0'), "no IPv6 default route: {v6:?}");
        assert!(v6.stdout.contains("unreachable"), "{v6:?}");
    });

    check!("the resolver answers only allowlisted names", {
        // (The transparent redirect itself is proven above: curl reached the TLS stand-in on
        // a port it never named, at the address the resolver gave.)
        let out = worker.sh(id, "python3 -c 'import socket; print(socket.gethostbyname(\"api.allowed.test\"))'; python3 -c 'import socket; socket.gethostbyname(\"evil.example\")' 2>&1 | tail -1").await;
        assert!(
            out.stdout
                .starts_with(&worker.pool.dns_answer().to_string()),
            "{out:?}"
        );
        assert!(
            out.stdout.contains("Name or service not known") || out.stdout.contains("not known"),
            "{out:?}"
        );
    });

    // Checkpoint, change, restore: the file comes back; the metadata names, never values.
    let checkpoint = worker.runtime.checkpoint(id).await;
    let _ = checkpoint; // the first checkpoint (before writing) only proves a running VM freezes
    worker
        .sh(
            id,
            "echo from-checkpoint > /workspace/state; echo \"$API_KEY\" > /workspace/saved-token",
        )
        .await;
    let saved = worker.runtime.checkpoint(id).await.expect("checkpoint");
    check!("checkpoint metadata holds token ids only", {
        let meta = std::fs::read_to_string(
            worker
                .data_dir
                .join("checkpoints")
                .join(saved.checkpoint_id.to_string())
                .join("meta.json"),
        )
        .expect("meta.json");
        assert!(
            meta.contains("API_KEY") && meta.contains(sealed.short_id()),
            "{meta}"
        );
        assert!(
            !meta.contains(sealed.as_str()),
            "a token in checkpoint metadata"
        );
    });
    check!("restore brings the disk back", {
        worker.sh(id, "echo changed > /workspace/state").await;
        worker
            .runtime
            .restore(id, saved.checkpoint_id)
            .await
            .expect("restore");
        let state = worker.sh(id, "cat /workspace/state; echo $API_KEY").await;
        assert_eq!(
            state.stdout,
            format!("from-checkpoint\n{sealed}\n"),
            "same id, same token: {state:?}"
        );
        assert_eq!(
            worker.runtime.info(id).await.expect("info").address,
            info.address
        );
    });

    check!("fork boots the parent's disk with fresh tokens", {
        let fork_token = token();
        let mut fork_spec = vm_spec(proxy, &pki.ca_pem);
        fork_spec.sealed_envs.push(SealedEnv {
            name: "API_KEY".into(),
            token: fork_token,
        });
        let fork = fork_spec.id;
        let fork_info = worker
            .runtime
            .fork(saved.checkpoint_id, fork_spec)
            .await
            .expect("fork");
        assert_ne!(fork_info.address, info.address);
        let out = worker
            .sh(
                fork,
                "cat /workspace/state; echo $API_KEY; cat /workspace/saved-token",
            )
            .await;
        assert_eq!(
            out.stdout,
            format!("from-checkpoint\n{fork_token}\n{sealed}\n"),
            "{out:?}"
        );
        worker.runtime.destroy(fork).await.expect("destroy fork");
    });

    check!("golden snapshot boots, through the worker's dispatch", {
        // A worker with both runtimes: the spec's `runtime` picks the microVM one.
        let dev_dir = tempfile::tempdir().expect("temp dir");
        let netns_side: std::sync::Arc<dyn Runtime> = std::sync::Arc::new(
            osb_vm::DevelopmentRuntime::new(dev_dir.path()).expect("dev runtime"),
        );
        let dispatch = osb_vm::DispatchRuntime::new(
            netns_side,
            Ok(std::sync::Arc::new(worker.runtime.clone())),
        );
        assert_eq!(
            dispatch.kinds(),
            vec![RuntimeKind::Netns, RuntimeKind::Microvm]
        );
        dispatch
            .register_snapshot("vm-golden", saved.checkpoint_id)
            .await
            .expect("snapshot");
        let mut golden = vm_spec(unused_proxy(), &pki.ca_pem);
        golden.boot_from = BootLayer::Snapshot("vm-golden".into());
        let golden_id = golden.id;
        dispatch.create(golden).await.expect("create from snapshot");
        let out = dispatch
            .exec(
                golden_id,
                ExecRequest::shell("cat /workspace/state; uname -r"),
            )
            .await
            .expect("exec");
        assert!(out.stdout.starts_with("from-checkpoint\n"), "{out:?}");
        assert_ne!(
            out.stdout.lines().nth(1),
            Some(host_kernel().as_str()),
            "a guest kernel of its own"
        );
        dispatch.destroy(golden_id).await.expect("destroy");
    });

    check!("stop and start keep the disk", {
        worker.runtime.stop(id).await.expect("stop");
        assert_eq!(
            worker.runtime.info(id).await.expect("info").state,
            SandboxState::Stopped
        );
        assert!(matches!(
            worker.runtime.exec(id, ExecRequest::shell("true")).await,
            Err(RuntimeError::NotRunning(_))
        ));
        worker.runtime.start(id).await.expect("start");
        assert_eq!(
            worker.sh(id, "cat /workspace/state").await.stdout,
            "from-checkpoint\n"
        );
    });

    check!("destroy leaves nothing", {
        worker.runtime.destroy(id).await.expect("destroy");
        worker.runtime.destroy(id).await.expect("destroy twice");
        let census = worker.runtime.census().await.expect("census");
        assert!(
            census.is_empty()
                || (census.sandbox_dirs == 0
                    && census.netns == 0
                    && census.processes == 0
                    && census.nft_tables == 0
                    && census.veths == 0
                    && census.cgroups == 0),
            "{census:?}"
        );
        assert!(qemu_processes(&worker.prefix).is_empty());
    });
    let _ = &worker.sink;
}
