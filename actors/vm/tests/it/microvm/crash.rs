//! Crashes: QEMU killed under a running exec, then the worker vanishing without destructors;
//! the next runtime with the same prefix reaps every VM, tap, namespace, rule and directory.

use std::time::Duration;

use osb_vm::{ExecChunk, ExecRequest, Runtime, SandboxState};

use super::{qemu_processes, vm_spec, VmWorker};
use crate::support::{unused_proxy, TestPki};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_qemu_and_a_crashed_worker_leave_nothing() {
    let worker = VmWorker::start(2).await;
    let pki = TestPki::new("unused.test");
    let spec = vm_spec(unused_proxy(), &pki.ca_pem);
    let id = spec.id;
    worker.runtime.create(spec).await.expect("create");
    let census = worker.runtime.census().await.expect("census");
    assert_eq!(
        (
            census.netns,
            census.veths,
            census.nft_tables,
            census.sandbox_dirs
        ),
        (1, 1, 1, 1),
        "{census:?}"
    );
    assert!(
        census.processes >= 1,
        "QEMU runs inside the sandbox cgroup: {census:?}"
    );

    // QEMU dies under a running exec: the exec ends with a clear message, the sandbox is stopped.
    let mut stream = worker
        .runtime
        .exec_streaming(id, ExecRequest::shell("sleep 60"))
        .await
        .expect("stream");
    let pids = qemu_processes(&worker.prefix);
    assert_eq!(pids.len(), 1, "{pids:?}");
    let pid: i32 = pids[0].parse().expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill qemu");
    let mut last = None;
    let mut stderr = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), stream.chunks.recv())
        .await
        .expect("the stream ends")
    {
        if let ExecChunk::Stderr(bytes) = &chunk {
            stderr.extend_from_slice(bytes);
        }
        last = Some(chunk);
    }
    assert!(
        matches!(last, Some(ExecChunk::Exited { exit_code: -1, .. })),
        "{last:?}"
    );
    assert!(String::from_utf8_lossy(&stderr).contains("microVM stopped"));
    assert_eq!(
        worker.runtime.info(id).await.expect("info").state,
        SandboxState::Stopped
    );

    // Boot it again, then crash the worker: nothing runs its destructors.
    worker.runtime.start(id).await.expect("start after a crash");
    assert_eq!(worker.sh(id, "echo back").await.stdout, "back\n");
    std::mem::forget(worker.runtime.clone());
    let restarted =
        VmWorker::runtime(&worker.prefix, &worker.data_dir, worker.pool, &worker.sink).await;
    let after = restarted.census().await.expect("census");
    assert!(
        after.is_empty(),
        "the restarted worker left orphans: {after:?}"
    );
    assert!(
        qemu_processes(&worker.prefix).is_empty(),
        "a QEMU survived the reaper"
    );
}
