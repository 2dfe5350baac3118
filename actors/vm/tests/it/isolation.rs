//! A sandbox runs the host's sh, curl, python3 and node as an unprivileged user, in its own
//! namespaces, with a root that shows nothing of the worker or of other sandboxes, and under
//! cgroup limits from its spec.

use osb_vm::Runtime;

use crate::support::{spec, unused_proxy, TestPki, TestWorker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sh_curl_python_and_node_run_inside_as_the_sandbox_user() {
    sh_curl_python_and_node_run_inside_as_the_sandbox_user_on(TestWorker::start(1).await).await;
}

/// The same on sandboxes claimed from a warm pool (ADR 0208).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sh_curl_python_and_node_run_inside_as_the_sandbox_user_claimed() {
    sh_curl_python_and_node_run_inside_as_the_sandbox_user_on(
        TestWorker::start_pooled(101, 4).await,
    )
    .await;
}

async fn sh_curl_python_and_node_run_inside_as_the_sandbox_user_on(worker: TestWorker) {
    let pki = TestPki::new("unused.test");
    let id = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;

    let who = worker.sh(id, "id -u; id -g; pwd; hostname").await;
    assert_eq!(who.exit_code, 0, "{who:?}");
    let lines: Vec<&str> = who.stdout.lines().collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    assert_eq!(lines[2], "/workspace");
    assert!(lines[3].starts_with("sbx-"));

    let python = worker
        .sh(
            id,
            "python3 -c 'import ssl, sys; print(sys.version_info[0])'",
        )
        .await;
    assert_eq!(python.stdout.trim(), "3", "{python:?}");
    let node = worker.sh(id, "node -e 'console.log(6*7)'").await;
    assert_eq!(node.stdout.trim(), "42", "{node:?}");
    let curl = worker.sh(id, "curl --version | head -n1").await;
    assert!(curl.stdout.starts_with("curl "), "{curl:?}");

    // No capabilities, so no mounting, no changing the network, no becoming root again.
    let caps = worker.sh(id, "grep CapEff /proc/self/status").await;
    assert!(caps.stdout.contains("0000000000000000"), "{caps:?}");
    let mount = worker
        .sh(id, "mount -t tmpfs none /tmp 2>&1; echo rc=$?")
        .await;
    assert!(!mount.stdout.contains("rc=0"), "{mount:?}");
    let ip = worker
        .sh(id, "ip addr add 100.100.1.99/32 dev eth0 2>&1; echo rc=$?")
        .await;
    assert!(!ip.stdout.contains("rc=0"), "{ip:?}");
    let system_tree = worker.sh(id, "touch /usr/bin/x 2>&1; echo rc=$?").await;
    assert!(!system_tree.stdout.contains("rc=0"), "{system_tree:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_and_other_sandboxes_are_invisible() {
    the_worker_and_other_sandboxes_are_invisible_on(TestWorker::start(2).await).await;
}

/// The same on sandboxes claimed from a warm pool (ADR 0208).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_and_other_sandboxes_are_invisible_claimed() {
    the_worker_and_other_sandboxes_are_invisible_on(TestWorker::start_pooled(102, 4).await).await;
}

async fn the_worker_and_other_sandboxes_are_invisible_on(worker: TestWorker) {
    let pki = TestPki::new("unused.test");
    let first = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    let second = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;

    let wrote = worker
        .sh(first, "echo mine > /workspace/private.txt && echo ok")
        .await;
    assert_eq!(wrote.stdout.trim(), "ok");
    let data_dir = worker.data_dir.display().to_string();
    let listing = worker.sh(second, "ls /workspace; ls /").await;
    assert!(!listing.stdout.contains("private.txt"), "{listing:?}");
    let probe = worker
        .runtime
        .exec(
            second,
            osb_vm::ExecRequest::new(["test", "-e", data_dir.as_str()]),
        )
        .await
        .expect("exec");
    assert_eq!(
        probe.exit_code, 1,
        "the data dir must not exist inside: {probe:?}"
    );
    // Only the sandbox user's own processes are visible; pid 1 (which names host paths) is not.
    let processes = worker
        .sh(
            second,
            "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done",
        )
        .await;
    assert!(!processes.stdout.contains(&data_dir), "{processes:?}");
    assert!(!processes.stdout.contains("osb-boot"), "{processes:?}");
    assert!(
        !processes.stdout.contains("cargo") && !processes.stdout.contains("nextest"),
        "{processes:?}"
    );

    // The first sandbox still sees its own file; the layers are separate.
    let again = worker.sh(first, "cat /workspace/private.txt").await;
    assert_eq!(again.stdout.trim(), "mine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_limits_follow_the_spec() {
    cgroup_limits_follow_the_spec_on(TestWorker::start(3).await).await;
}

/// The same on sandboxes claimed from a warm pool (ADR 0208).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgroup_limits_follow_the_spec_claimed() {
    cgroup_limits_follow_the_spec_on(TestWorker::start_pooled(103, 4).await).await;
}

async fn cgroup_limits_follow_the_spec_on(worker: TestWorker) {
    let pki = TestPki::new("unused.test");
    let mut sandbox_spec = spec(unused_proxy(), &pki.ca_pem);
    sandbox_spec.cpu_count = 2;
    sandbox_spec.memory_mb = 96;
    let id = worker.create(sandbox_spec).await;

    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let (memory_file, cpu_file) = if v2 {
        (
            format!("/sys/fs/cgroup/{}/{id}/memory.max", worker.prefix),
            format!("/sys/fs/cgroup/{}/{id}/cpu.max", worker.prefix),
        )
    } else {
        (
            format!(
                "/sys/fs/cgroup/memory/{}/{id}/memory.limit_in_bytes",
                worker.prefix
            ),
            format!("/sys/fs/cgroup/cpu/{}/{id}/cpu.cfs_quota_us", worker.prefix),
        )
    };
    let memory = std::fs::read_to_string(&memory_file).expect("memory limit file");
    assert_eq!(memory.trim(), (96u64 * 1024 * 1024).to_string());
    let cpu = std::fs::read_to_string(&cpu_file).expect("cpu limit file");
    assert!(cpu.starts_with("200000"), "{cpu}");

    // The exec itself runs inside the sandbox's cgroup.
    let procs_file = if v2 {
        format!("/sys/fs/cgroup/{}/{id}/cgroup.procs", worker.prefix)
    } else {
        format!("/sys/fs/cgroup/memory/{}/{id}/cgroup.procs", worker.prefix)
    };
    let inside = worker.sh(id, "cat /proc/self/cgroup").await;
    let expected = format!("/{}/{id}", worker.prefix);
    assert!(inside.stdout.contains(&expected), "{inside:?}");
    assert!(!std::fs::read_to_string(procs_file)
        .expect("procs")
        .trim()
        .is_empty());

    // Allocating far beyond the limit kills the allocation, not the worker.
    let hog = worker
        .sh(
            id,
            "python3 -c 'x = bytearray(400 * 1024 * 1024); print(len(x))'; echo rc=$?",
        )
        .await;
    assert!(!hog.stdout.contains("rc=0"), "{hog:?}");
}
