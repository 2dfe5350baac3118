//! The warm pool (ADR 0208): a pooled sandbox reaches nothing until a claim installs its
//! rules, runs nothing but pid 1, and holds nothing of any spec; a claimed sandbox is the
//! sandbox of its spec in every way a cold one is (hostname, limits, env, disk, exec,
//! stop/start, checkpoint/restore/fork, destroy); concurrent claims never share a sandbox; a
//! drain, a failed personalise and a crash leave nothing behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use osb_proto::SandboxId;
use osb_vm::netns::ClaimStep;
use osb_vm::{ProxyEndpoints, Runtime};

use crate::secrets::grep_tree;
use crate::support::{pool, spec, spec_with_secret, token, unused_proxy, TestPki, TestWorker};

const V2: &str = "/sys/fs/cgroup/cgroup.controllers";

fn hostname_of(id: SandboxId) -> String {
    format!("sbx-{}", &id.as_uuid().simple().to_string()[..12])
}

/// The worker's cgroup directory of sandbox `name` for `controller` (v1) or the unified one.
fn cgroup_dir(prefix: &str, controller: &str, name: &str) -> PathBuf {
    if Path::new(V2).exists() {
        PathBuf::from(format!("/sys/fs/cgroup/{prefix}/{name}"))
    } else {
        PathBuf::from(format!("/sys/fs/cgroup/{controller}/{prefix}/{name}"))
    }
}

/// Names of the pooled sandboxes' directories (`warm-…`).
fn pooled_dirs(worker: &TestWorker) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(worker.data_dir.join("sandboxes"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| name.starts_with("warm-"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Probes run from inside a network namespace or sandbox: each line `<label> open|blocked` or
/// `<label> answered|blocked`.
fn probe_script(probes: &[(&str, &str, String, u16)]) -> String {
    let mut script = String::from(
        r#"
import socket
def tcp(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close(); return "open"
    except OSError:
        return "blocked"
def udp(host, port):
    query = bytes.fromhex("abcd01000001000000000000") + b"\x03api\x07allowed\x04test\x00\x00\x01\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
    try:
        s.sendto(query, (host, port)); s.recvfrom(512); return "answered"
    except OSError:
        return "blocked"
"#,
    );
    for (label, kind, host, port) in probes {
        script.push_str(&format!("print('{label}', {kind}('{host}', {port}))\n"));
    }
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_sandbox_reaches_nothing_until_claimed() {
    let worker = TestWorker::start_pooled(80, 1).await;
    let pki = TestPki::new("unused.test");
    let census = worker.runtime.census().await.expect("census");
    assert_eq!(
        (census.pooled, census.netns, census.nft_tables),
        (1, 1, 1),
        "{census:?}"
    );

    // Host-side listeners: the proxy's two ports and an origin, on every address.
    let bind = || async {
        tokio::net::TcpListener::bind("0.0.0.0:0")
            .await
            .expect("bind")
    };
    let (transparent, explicit, origin) = (bind().await, bind().await, bind().await);
    let port = |listener: &tokio::net::TcpListener| listener.local_addr().expect("addr").port();
    let proxy = ProxyEndpoints {
        transparent_port: port(&transparent),
        explicit_port: port(&explicit),
    };
    let origin_port = port(&origin);
    let resolver_port = worker.runtime.resolver_addr().port();
    let link = pool(80).slot(1);
    let gateway = link.gateway.to_string();
    // The host reaches its own listeners on the gateway: a failure below is the rules' doing.
    tokio::net::TcpStream::connect((link.gateway, origin_port))
        .await
        .expect("the host reaches its origin");

    let netns = format!("{}-n1", worker.prefix);
    assert!(Path::new("/run/netns").join(&netns).exists(), "{netns}");
    let probes = [
        (
            "explicit-proxy",
            "tcp",
            gateway.clone(),
            proxy.explicit_port,
        ),
        (
            "transparent-proxy",
            "tcp",
            gateway.clone(),
            proxy.transparent_port,
        ),
        ("web-443", "tcp", worker.dns_answer().to_string(), 443),
        ("web-80", "tcp", gateway.clone(), 80),
        ("origin", "tcp", gateway.clone(), origin_port),
        ("resolver-53", "udp", gateway.clone(), 53),
        ("resolver-port", "udp", gateway.clone(), resolver_port),
    ];
    let out = tokio::process::Command::new("ip")
        .args(["netns", "exec", &netns, "python3", "-c"])
        .arg(probe_script(&probes))
        .output()
        .await
        .expect("ip netns exec runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (label, ..) in &probes {
        assert!(
            stdout.contains(&format!("{label} blocked")),
            "a pooled sandbox reached {label}: {stdout}"
        );
    }

    // Nothing runs in it but pid 1 (and the `unshare` that holds it, outside its namespaces).
    let [pooled] = pooled_dirs(&worker).try_into().expect("one pooled sandbox");
    let procs =
        std::fs::read_to_string(cgroup_dir(&worker.prefix, "pids", &pooled).join("cgroup.procs"))
            .expect("the pooled cgroup");
    let commands: Vec<String> = procs
        .lines()
        .map(|pid| {
            std::fs::read_to_string(format!("/proc/{}/cmdline", pid.trim()))
                .unwrap_or_default()
                .replace('\0', " ")
        })
        .collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(
        commands.iter().any(|c| c.starts_with("unshare ")),
        "{commands:?}"
    );
    assert!(
        commands.iter().any(|c| c.contains("osb-boot")),
        "{commands:?}"
    );

    // Claimed, the same link follows the sandbox's rules: the proxy and resolver paths open,
    // everything else stays shut.
    let id = worker.create(spec(proxy, &pki.ca_pem)).await;
    let info = worker.runtime.info(id).await.expect("info");
    assert_eq!(info.address, link.sandbox, "the pooled link was claimed");
    let claimed = [
        (
            "explicit-proxy",
            "tcp",
            gateway.clone(),
            proxy.explicit_port,
        ),
        ("web-443", "tcp", worker.dns_answer().to_string(), 443),
        ("origin", "tcp", gateway.clone(), origin_port),
        (
            "transparent-direct",
            "tcp",
            gateway.clone(),
            proxy.transparent_port,
        ),
        ("resolver-53", "udp", gateway.clone(), 53),
    ];
    let expected = [
        "explicit-proxy open",
        "web-443 open",
        "origin blocked",
        "transparent-direct blocked",
        "resolver-53 answered",
    ];
    let out = worker.py(id, &probe_script(&claimed), &[]).await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    for line in expected {
        assert!(out.stdout.contains(line), "expected {line:?} in {out:?}");
    }

    // The refill made the next pooled sandbox with the claim's rules already in place (no
    // transaction at its claim): its downed link alone keeps it shut until it is claimed.
    assert!(worker.wait_for_pool().await);
    let next = pool(80).slot(2);
    let table = tokio::process::Command::new("nft")
        .args(["list", "table", "netdev", &format!("{}_s2", worker.prefix)])
        .output()
        .await
        .expect("nft runs");
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains(&format!("dport {} accept", proxy.explicit_port)),
        "{table}"
    );
    let gateway = next.gateway.to_string();
    let probes = [
        (
            "explicit-proxy",
            "tcp",
            gateway.clone(),
            proxy.explicit_port,
        ),
        ("web-443", "tcp", worker.dns_answer().to_string(), 443),
        ("origin", "tcp", gateway.clone(), origin_port),
        ("resolver-53", "udp", gateway.clone(), 53),
    ];
    let out = tokio::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("{}-n2", worker.prefix),
            "python3",
            "-c",
        ])
        .arg(probe_script(&probes))
        .output()
        .await
        .expect("ip netns exec runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (label, ..) in &probes {
        assert!(
            stdout.contains(&format!("{label} blocked")),
            "a pooled sandbox with rules reached {label}: {stdout}"
        );
    }
    let second = worker.create(spec(proxy, &pki.ca_pem)).await;
    assert_eq!(
        worker.runtime.info(second).await.expect("info").address,
        next.sandbox
    );
    let claimed = [
        (
            "explicit-proxy",
            "tcp",
            gateway.clone(),
            proxy.explicit_port,
        ),
        ("web-443", "tcp", worker.dns_answer().to_string(), 443),
        ("origin", "tcp", gateway.clone(), origin_port),
        (
            "transparent-direct",
            "tcp",
            gateway.clone(),
            proxy.transparent_port,
        ),
        ("resolver-53", "udp", gateway, 53),
    ];
    let out = worker.py(second, &probe_script(&claimed), &[]).await;
    for line in expected {
        assert!(out.stdout.contains(line), "expected {line:?} in {out:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_sandbox_is_the_sandbox_of_its_spec() {
    let worker = TestWorker::start_pooled(81, 2).await;
    let pki = TestPki::new("unused.test");
    let mut wanted = spec_with_secret(unused_proxy(), &pki.ca_pem, "API_KEY", token());
    wanted.cpu_count = 2;
    wanted.memory_mb = 96;
    wanted.user_envs.insert("GREETING".into(), "hello".into());
    let before = pooled_dirs(&worker);
    let id = worker.create(wanted.clone()).await;
    let name = hostname_of(id);

    // Hostname: UTS, /etc/hostname and /etc/hosts, as the cold path writes them.
    let names = worker
        .sh(
            id,
            "hostname; cat /etc/hostname; grep -c \"$(hostname)\" /etc/hosts",
        )
        .await;
    assert_eq!(names.stdout, format!("{name}\n{name}\n1\n"), "{names:?}");

    // Limits of the spec, in the cgroup named after the id; the pool's cgroup is gone.
    let read = |controller: &str, file: &str| {
        std::fs::read_to_string(cgroup_dir(&worker.prefix, controller, &id.to_string()).join(file))
            .unwrap_or_else(|e| panic!("{controller}/{file}: {e}"))
            .trim()
            .to_owned()
    };
    let v2 = Path::new(V2).exists();
    let memory = read(
        "memory",
        if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        },
    );
    assert_eq!(memory, (96u64 * 1024 * 1024).to_string());
    let cpu = read("cpu", if v2 { "cpu.max" } else { "cpu.cfs_quota_us" });
    assert!(cpu.starts_with("200000"), "{cpu}");
    assert_eq!(read("pids", "pids.max"), "1024");
    let inside = worker.sh(id, "cat /proc/self/cgroup").await;
    assert!(
        inside.stdout.contains(&format!("/{}/{id}", worker.prefix)),
        "{inside:?}"
    );
    let after = pooled_dirs(&worker);
    let claimed_dir: Vec<&String> = before.iter().filter(|dir| !after.contains(dir)).collect();
    assert_eq!(claimed_dir.len(), 1, "{before:?} -> {after:?}");
    assert!(!cgroup_dir(&worker.prefix, "pids", claimed_dir[0]).exists());
    assert!(worker
        .data_dir
        .join("sandboxes")
        .join(id.to_string())
        .is_dir());

    // Env: user envs, the sealed token, the proxy toward its own gateway.
    let info = worker.runtime.info(id).await.expect("info");
    let env = worker
        .sh(
            id,
            "echo $GREETING; echo $API_KEY | cut -c1-11; echo $HTTPS_PROXY",
        )
        .await;
    let lines: Vec<&str> = env.stdout.lines().collect();
    assert_eq!(lines[0], "hello", "{env:?}");
    assert_eq!(
        lines[1],
        osb_proto::SEALED_TOKEN_PREFIX
            .chars()
            .take(11)
            .collect::<String>()
    );
    assert!(lines[2].contains(&info.gateway.to_string()), "{env:?}");

    // The disk quota is the same as a cold sandbox's.
    let cold = wanted.clone();
    let cold = osb_vm::SandboxSpec {
        id: SandboxId::new(),
        ..cold
    };
    let cold_id = cold.id;
    worker.runtime.create_cold(cold).await.expect("cold create");
    // (`awk` is an /etc/alternatives link on Debian: not there inside.)
    let df = "df -Pk /workspace | tail -n1";
    let size = |out: osb_vm::ExecOutput| -> u64 {
        out.stdout
            .split_whitespace()
            .nth(1)
            .and_then(|field| field.parse().ok())
            .unwrap_or_else(|| panic!("no size in {out:?}"))
    };
    let size_kib = size(worker.sh(id, df).await);
    assert_eq!(size_kib, size(worker.sh(cold_id, df).await));
    assert!(size_kib > 64 * 1024 && size_kib <= 128 * 1024, "{size_kib}");

    // Stop/start keeps the name; checkpoint, restore and fork work.
    worker.sh(id, "echo v1 > /workspace/state.txt").await;
    worker.runtime.stop(id).await.expect("stop");
    worker.runtime.start(id).await.expect("start");
    assert_eq!(worker.sh(id, "hostname").await.stdout.trim(), name);
    let checkpoint = worker.runtime.checkpoint(id).await.expect("checkpoint");
    worker.sh(id, "echo v2 > /workspace/state.txt").await;
    worker
        .runtime
        .restore(id, checkpoint.checkpoint_id)
        .await
        .expect("restore");
    assert_eq!(
        worker
            .sh(id, "cat /workspace/state.txt")
            .await
            .stdout
            .trim(),
        "v1"
    );
    assert_eq!(worker.sh(id, "hostname").await.stdout.trim(), name);
    let child = spec(unused_proxy(), &pki.ca_pem);
    let child_id = child.id;
    worker
        .runtime
        .fork(checkpoint.checkpoint_id, child)
        .await
        .expect("fork");
    assert_eq!(
        worker
            .sh(child_id, "cat /workspace/state.txt")
            .await
            .stdout
            .trim(),
        "v1"
    );
    assert_eq!(
        worker.sh(child_id, "hostname").await.stdout.trim(),
        hostname_of(child_id)
    );

    // Destroyed, nothing of them is left: only the (refilled) pool remains.
    for sandbox in [id, cold_id, child_id] {
        worker.runtime.destroy(sandbox).await.expect("destroy");
    }
    assert!(worker.wait_for_pool().await);
    let census = worker.runtime.census().await.expect("census");
    assert_eq!(census.pooled, 2, "{census:?}");
    assert_eq!(
        (
            census.sandbox_dirs,
            census.netns,
            census.veths,
            census.nft_tables
        ),
        (2, 2, 2, 2),
        "{census:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_each_get_their_own_sandbox() {
    let worker = TestWorker::start_pooled(82, 4).await;
    let pki = TestPki::new("unused.test");
    let claims = worker.runtime.warm_pool_claims();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let runtime = worker.runtime.clone();
        let sandbox = spec(unused_proxy(), &pki.ca_pem);
        tasks.push(tokio::spawn(async move {
            let id = sandbox.id;
            runtime.create(sandbox).await.map(|info| (id, info))
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        created.push(task.await.expect("joined").expect("create"));
    }
    // The four pooled sandboxes went to four creates; the other four were built cold (a
    // build of the refill takes far longer than eight takes).
    assert_eq!(worker.runtime.warm_pool_claims() - claims, 4);
    let mut addresses: Vec<_> = created.iter().map(|(_, info)| info.address).collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 8, "{created:?}");
    for (id, _) in &created {
        let out = worker.sh(*id, "hostname; cat /etc/hostname").await;
        assert_eq!(
            out.stdout,
            format!("{0}\n{0}\n", hostname_of(*id)),
            "{out:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_pool_leaves_nothing_and_builds_no_more() {
    let worker = TestWorker::start_pooled(83, 3).await;
    let pki = TestPki::new("unused.test");
    let id = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    assert!(worker.wait_for_pool().await);
    let full = worker.runtime.census().await.expect("census");
    assert_eq!((full.pooled, full.sandbox_dirs), (3, 4), "{full:?}");
    assert!(worker.runtime.info(id).await.is_ok());

    worker.runtime.shutdown().await.expect("shutdown");
    let after = worker.runtime.census().await.expect("census");
    assert!(after.is_empty(), "{after:?}");
    // No refill after the drain; a create now takes the cold path.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(worker.runtime.warm_pool_ready(), 0);
    let claims = worker.runtime.warm_pool_claims();
    let cold = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    assert_eq!(worker.runtime.warm_pool_claims(), claims);
    worker.runtime.destroy(cold).await.expect("destroy");
    let census = worker.runtime.census().await.expect("census");
    assert!(census.is_empty(), "{census:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_personalise_leaves_nothing_and_is_never_pooled_again() {
    let worker = TestWorker::start_pooled(84, 1).await;
    let pki = TestPki::new("unused.test");
    for step in ClaimStep::ALL {
        assert!(worker.wait_for_pool().await);
        let [failing] = pooled_dirs(&worker).try_into().expect("one pooled sandbox");
        worker.runtime.inject_claim_fault(Some(step));
        let claims = worker.runtime.warm_pool_claims();
        // The create still succeeds, cold (ADR 0208).
        let sandbox = spec(unused_proxy(), &pki.ca_pem);
        let id = sandbox.id;
        worker
            .runtime
            .create(sandbox)
            .await
            .expect("the cold fallback");
        worker.runtime.inject_claim_fault(None);
        assert_eq!(worker.runtime.warm_pool_claims(), claims, "{step:?}");
        assert_eq!(
            worker.sh(id, "hostname").await.stdout.trim(),
            hostname_of(id)
        );
        assert!(
            !worker.data_dir.join("sandboxes").join(&failing).exists(),
            "{step:?}"
        );
        assert!(
            !cgroup_dir(&worker.prefix, "pids", &failing).exists(),
            "{step:?}"
        );
        worker.runtime.destroy(id).await.expect("destroy");
        assert!(worker.wait_for_pool().await);
        let refilled = pooled_dirs(&worker);
        assert!(
            !refilled.contains(&failing),
            "{step:?}: re-pooled {failing}"
        );
        let census = worker.runtime.census().await.expect("census");
        assert_eq!(
            (
                census.pooled,
                census.sandbox_dirs,
                census.netns,
                census.veths,
                census.nft_tables
            ),
            (1, 1, 1, 1, 1),
            "failing after {step:?} left {census:?}"
        );
        let pids_leaves = std::fs::read_dir(cgroup_dir(&worker.prefix, "pids", ""))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().is_dir())
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(pids_leaves, 1, "{step:?}: cgroups left behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_reaps_a_crashed_workers_pool() {
    let mut worker = TestWorker::start_pooled(85, 2).await;
    let pki = TestPki::new("unused.test");
    worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    assert!(worker.wait_for_pool().await);
    let left = worker.runtime.census().await.expect("census");
    assert_eq!((left.pooled, left.netns), (2, 3), "{left:?}");
    assert!(left.processes >= 6, "{left:?}");

    // Crash: the runtime vanishes without a drain; its pooled pid 1s keep running.
    std::mem::forget(worker.runtime.clone());
    worker.restart_runtime(85).await;
    let after = worker.runtime.census().await.expect("census");
    assert!(
        after.is_empty(),
        "the restarted worker left orphans: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_of_a_claim_reaches_a_later_pooled_sandbox() {
    let worker = TestWorker::start_pooled(86, 2).await;
    let pki = TestPki::new("unused.test");
    let canary = token();
    let canary_text = canary.as_str().to_owned();
    let mut first = spec_with_secret(unused_proxy(), &pki.ca_pem, "API_KEY", canary);
    first
        .user_envs
        .insert("CANARY_ENV".into(), "canary-user-env-86".into());
    let first_id = worker.create(first).await;
    let wrote = worker
        .sh(first_id, "echo \"$API_KEY $CANARY_ENV\" > /workspace/leak.txt; echo \"$API_KEY\" > /tmp/leak.txt; cat /workspace/leak.txt")
        .await;
    assert!(wrote.stdout.contains(&canary_text), "{wrote:?}");
    worker.runtime.destroy(first_id).await.expect("destroy");
    assert!(worker.wait_for_pool().await);

    // Neither the pooled sandboxes' files and disks nor a later claim hold any of it.
    let hits = grep_tree(&worker.data_dir.join("sandboxes"), &canary_text);
    assert!(hits.is_empty(), "the token is in {hits:?}");
    let hits = grep_tree(&worker.data_dir.join("sandboxes"), "canary-user-env-86");
    assert!(hits.is_empty(), "the user env is in {hits:?}");
    let second = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    let look = worker
        .sh(second, "env; cat /workspace/* /tmp/* 2>/dev/null; grep -rls osb_sealed /workspace /tmp /etc /root /var 2>/dev/null")
        .await;
    assert!(!look.stdout.contains(&canary_text), "{look:?}");
    assert!(!look.stdout.contains("canary-user-env-86"), "{look:?}");
    assert!(!look.stdout.contains("API_KEY"), "{look:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_larger_than_the_limit_is_refused_clearly() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data_dir = temp.path().join("data");
    let _guard = crate::support::ReapGuard::new("osbt87", &data_dir);
    let mut config = osb_vm::NetnsConfig::new("osbt87", &data_dir);
    config.address_pool = pool(87);
    config.warm_pool = osb_vm::config::MAX_WARM_POOL + 1;
    let error = osb_vm::NetnsRuntime::new(config, std::sync::Arc::new(osb_vm::LogSink))
        .await
        .expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("65") && text.contains("0 to 64"), "{text}");
    assert!(!data_dir.exists(), "nothing was made before the refusal");
}
