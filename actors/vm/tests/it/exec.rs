//! Exec inside a sandbox: env and cwd, exit codes, timeouts, bounded output with a marker,
//! streaming, and stop/start.

use std::time::Duration;

use osb_vm::output::TRUNCATION_MARKER;
use osb_vm::{ExecChunk, ExecRequest, Runtime, RuntimeError, SandboxState};

use crate::support::{spec, unused_proxy, TestPki, TestWorker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_honours_env_cwd_timeout_and_output_bounds() {
    exec_honours_env_cwd_timeout_and_output_bounds_on(TestWorker::start(44).await).await;
}

/// The same on sandboxes claimed from a warm pool (ADR 0208).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_honours_env_cwd_timeout_and_output_bounds_claimed() {
    exec_honours_env_cwd_timeout_and_output_bounds_on(TestWorker::start_pooled(144, 4).await).await;
}

async fn exec_honours_env_cwd_timeout_and_output_bounds_on(worker: TestWorker) {
    let pki = TestPki::new("unused.test");
    let id = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;

    let mut request = ExecRequest::shell(
        "mkdir -p /workspace/sub; cd /workspace/sub 2>/dev/null; echo \"$GREETING\"; exit 7",
    );
    request.env.insert("GREETING".into(), "hello there".into());
    let out = worker.runtime.exec(id, request).await.expect("exec");
    assert_eq!(out.exit_code, 7);
    assert_eq!(out.stdout, "hello there\n");

    let mut in_dir = ExecRequest::new(["pwd"]);
    in_dir.cwd = Some("/workspace/sub".into());
    assert_eq!(
        worker.runtime.exec(id, in_dir).await.expect("exec").stdout,
        "/workspace/sub\n"
    );
    let mut missing_dir = ExecRequest::new(["pwd"]);
    missing_dir.cwd = Some("/nowhere".into());
    assert_ne!(
        worker
            .runtime
            .exec(id, missing_dir)
            .await
            .expect("exec")
            .exit_code,
        0
    );

    let mut slow = ExecRequest::shell("echo started; sleep 30; echo never");
    slow.timeout = Duration::from_secs(3);
    let out = worker.runtime.exec(id, slow).await.expect("exec");
    assert!(out.timed_out);
    assert_eq!(out.exit_code, osb_vm::runtime::TIMEOUT_EXIT_CODE);
    assert_eq!(out.stdout, "started\n");

    let mut loud = ExecRequest::shell("head -c 100000 /dev/zero | tr '\\0' a; echo oops >&2");
    loud.max_output_bytes = 1000;
    let out = worker.runtime.exec(id, loud).await.expect("exec");
    assert!(out.stdout_truncated);
    assert!(out.stdout.contains(TRUNCATION_MARKER));
    assert!(out.stdout.contains("99000 more bytes"));
    assert_eq!(out.stderr, "oops\n");

    let missing = worker
        .runtime
        .exec(id, ExecRequest::new(["no-such-program"]))
        .await
        .expect("exec");
    assert_eq!(missing.exit_code, 127, "{missing:?}");
    assert!(matches!(
        worker
            .runtime
            .exec(id, ExecRequest::new(Vec::<String>::new()))
            .await,
        Err(RuntimeError::EmptyCommand)
    ));
    let mut bad_env = ExecRequest::new(["true"]);
    bad_env.env.insert("NOT-A-NAME".into(), "x".into());
    assert!(matches!(
        worker.runtime.exec(id, bad_env).await,
        Err(RuntimeError::InvalidSpec(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_exec_and_stop_start() {
    streaming_exec_and_stop_start_on(TestWorker::start(45).await).await;
}

/// The same on sandboxes claimed from a warm pool (ADR 0208).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_exec_and_stop_start_claimed() {
    streaming_exec_and_stop_start_on(TestWorker::start_pooled(145, 4).await).await;
}

async fn streaming_exec_and_stop_start_on(worker: TestWorker) {
    let pki = TestPki::new("unused.test");
    let id = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;

    let mut stream = worker
        .runtime
        .exec_streaming(
            id,
            ExecRequest::shell("for i in 1 2 3; do echo line$i; done; echo err >&2; exit 4"),
        )
        .await
        .expect("stream");
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut exit = None;
    while let Some(chunk) = stream.chunks.recv().await {
        match chunk {
            ExecChunk::Stdout(bytes) => stdout.extend(bytes),
            ExecChunk::Stderr(bytes) => stderr.extend(bytes),
            ExecChunk::Exited {
                exit_code,
                timed_out,
            } => exit = Some((exit_code, timed_out)),
        }
    }
    assert_eq!(String::from_utf8_lossy(&stdout), "line1\nline2\nline3\n");
    assert_eq!(String::from_utf8_lossy(&stderr), "err\n");
    assert_eq!(exit, Some((4, false)));

    worker.sh(id, "echo kept > /workspace/file").await;
    worker.runtime.stop(id).await.expect("stop");
    assert_eq!(
        worker.runtime.info(id).await.expect("info").state,
        SandboxState::Stopped
    );
    assert!(matches!(
        worker.runtime.exec(id, ExecRequest::new(["true"])).await,
        Err(RuntimeError::NotRunning(_))
    ));
    worker.runtime.start(id).await.expect("start");
    assert_eq!(worker.sh(id, "cat /workspace/file").await.stdout, "kept\n");
}
