//! Control-plane benchmark (root only; issue 5): an in-process platform on PostgreSQL with one
//! netns worker, then
//!
//! * **create**: `SandboxService::create` end to end (the create saga with its Postgres log,
//!   placement, vault, `CreateSandbox` + `RegisterSession` over mutual TLS; no REST call), and
//!   the same through the REST API (`POST /api/sandboxes` over loopback HTTP), each sandbox
//!   destroyed after, side by side with the bare worker `CreateSandbox` RPC for the same spec
//!   (the baseline) and with `CreateSandbox` + `RegisterSession` (all the worker work the saga
//!   asks for), interleaved so every variant sees the same load. Per-step durations come from
//!   the saga log's timestamps (each step's `started` row) and from the create path's tracing
//!   spans (`spans.rs`: each step, log write, value staging, command round trip, vault read).
//! * **secret**: a sandbox runs `curl` over one keep-alive connection at a fixed rate to the
//!   origin with its sealed token; the bench `PUT`s a new value through the REST API and
//!   measures until the origin first receives the new value. Baseline: the same `PUT` on a
//!   project without running sandboxes (the write without fan-out), interleaved.
//!
//! * **fanout** (only when named: `-- fanout`): `OSB_BENCH_FANOUT` (200) idle sandboxes on the
//!   worker — proxy latency with 1 vs that many sessions, memory per idle sandbox — and
//!   `OSB_BENCH_ROTATIONS` (20) secret rotations acknowledged by all of them (`fanout.rs`).
//!
//! Run: `cargo bench -p osbd --bench control_plane` (as root; `-- create` or `-- secret` runs
//! one part). Knobs: `OSB_BENCH_CREATES` (default 40), `OSB_BENCH_UPDATES` (30),
//! `OSB_BENCH_RATE` (curl requests per second in the sandbox, 500), `OSB_BENCH_NATS=1` (the saga
//! commands and events over the NATS server at 127.0.0.1:4222 instead of the in-process bus). The platform is
//! `osbd::testkit`'s (the tests' own), with production leases; host objects use the prefix
//! `osbbea` and the pool `100.64.120.0/24`, reaped at the end even on failure.

mod fanout;
mod spans;
mod stats;

use std::time::{Duration, Instant};

use osb_control::sagas::params::{BootFrom, CreateParams};
use osb_control::SandboxService;
use osb_grpc::proto as wire;
use osb_proto::{ProjectId, SandboxId, SealedToken};
use serde_json::json;

use osbd::testkit::{start_platform, Platform as BenchPlatform, PlatformOptions, LLM_HOST};
use spans::SpanTimes;
use stats::{load_average, ms, print_row, Samples};

const WARM_UP: usize = 3;

/// The bench worker's name (the name in its certificate): the first worker of the testkit.
const WORKER: &str = "wa";

/// Destroys that lost a race with the control plane's own resume loop and were retried.
static DESTROY_RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Some(reason) = osb_vm::netns::unavailable_reason() {
        println!("control_plane bench skipped: the netns runtime is unavailable ({reason})");
        return;
    }
    // `cargo bench` passes `--bench`; any other argument selects parts by name.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let wants = |part: &str| {
        filters.is_empty()
            || filters
                .iter()
                .any(|f| f != "fanout" && part.contains(f.as_str()))
    };
    let fanout = filters.iter().any(|f| f == "fanout");
    let spans = SpanTimes::install();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let platform = start_platform(options(fanout)).await;
        // The origin first accepts the platform's canary; the secret bench rotates from there.
        let initial = platform.canary.value().to_owned();
        println!(
            "control_plane bench: 1 worker (netns), PostgreSQL, {} bus; load average {}",
            if over_nats() { "NATS" } else { "in-process" },
            load_average()
        );
        platform.project_with_key("bench").await;
        if wants("create") {
            bench_create(&platform, &spans, knob("OSB_BENCH_CREATES", 40)).await;
        }
        if wants("secret") {
            bench_secret_update(
                &platform,
                &initial,
                knob("OSB_BENCH_UPDATES", 30),
                knob("OSB_BENCH_RATE", 500),
            )
            .await;
        }
        // 200 sandboxes take a while: only when asked for by name.
        if filters.iter().any(|f| f == "fanout") {
            fanout::bench_fanout(
                &platform,
                knob("OSB_BENCH_FANOUT", 200).clamp(2, 247),
                knob("OSB_BENCH_ROTATIONS", 20),
            )
            .await;
        }
        let resumed = platform
            .control()
            .service()
            .metrics()
            .sagas_resumed
            .load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "sagas driven by the resume loop during the run: {resumed}; destroys retried after losing to it: {}",
            DESTROY_RETRIES.load(std::sync::atomic::Ordering::Relaxed)
        );
        println!("load average at the end {}", load_average());
        platform.stop().await;
    });
}

/// One worker `wa` (prefix `osbbea`, pool `100.64.120.0/24`) and the production defaults for
/// losing workers and saga leases, so the resume loop behaves as in a real control plane.
fn options(fanout: bool) -> PlatformOptions {
    let mut options = PlatformOptions::new("osbbe", 120);
    if fanout {
        // Room for the fan-out's sandboxes (a /22 pool: 120 is a multiple of 4).
        let wanted = knob("OSB_BENCH_FANOUT", 200).clamp(2, 247) as u32;
        options.sandboxes_per_worker = wanted + 8;
    }
    options.lost_after = None;
    options.lease = None;
    if over_nats() {
        // The saga commands of this run in a space of their own on the shared server.
        let tag = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        std::env::set_var(osb_bus::COMMAND_SPACE_ENV, tag);
        options.nats = true;
    }
    options
}

/// `OSB_BENCH_NATS=1`: the platform's bus is the NATS server at 127.0.0.1:4222 (commands on
/// JetStream) instead of the in-process bus.
fn over_nats() -> bool {
    std::env::var("OSB_BENCH_NATS").is_ok_and(|value| value == "1")
}

fn fresh_token() -> String {
    SealedToken::from_random_bytes(rand::random()).to_string()
}

fn spec(sandbox: SandboxId, project: ProjectId, token: &str) -> wire::SandboxSpec {
    wire::SandboxSpec {
        sandbox_id: sandbox.to_string(),
        project_id: project.to_string(),
        template: "host-system".to_owned(),
        user_envs: Default::default(),
        sealed_envs: vec![wire::SealedEnv {
            name: "ANTHROPIC_API_KEY".to_owned(),
            sealed_token: token.to_owned(),
        }],
        egress_allowlist: vec![LLM_HOST.to_owned()],
        cpu_count: 1,
        memory_mb: 512,
        timeout_sec: 300,
        runtime: String::new(),
        boot_from: None,
    }
}

/// Measured durations of one create variant.
#[derive(Default)]
struct Variant {
    create: Samples,
    destroy: Samples,
}

type WorkerClient = wire::worker_client::WorkerClient<tonic::transport::Channel>;

/// The bare worker calls of one create (and the destroy after): `CreateSandbox`, plus
/// `RegisterSession` with one secret when `register` is set. Returns (create, destroy).
async fn bare_create(
    client: &mut WorkerClient,
    project: ProjectId,
    register: bool,
) -> (Duration, Duration) {
    let sandbox = SandboxId::new();
    let token = fresh_token();
    let started = Instant::now();
    let booted = client
        .create_sandbox(wire::CreateSandboxRequest {
            idempotency_key: format!("{sandbox}:bench:do"),
            spec: Some(spec(sandbox, project, &token)),
        })
        .await
        .expect("CreateSandbox")
        .into_inner();
    if register {
        client
            .register_session(wire::RegisterSessionRequest {
                idempotency_key: format!("{sandbox}:bench-session:do"),
                sandbox_id: sandbox.to_string(),
                source_address: booted.source_address,
                secrets: vec![wire::SecretMaterial {
                    name: "ANTHROPIC_API_KEY".to_owned(),
                    sealed_token: token,
                    value: b"bench-value-of-a-typical-api-key-length-0123456789".to_vec(),
                    allowed_hosts: Vec::new(),
                    version: 1,
                }],
                egress_allowlist: vec![LLM_HOST.to_owned()],
            })
            .await
            .expect("RegisterSession");
    }
    let created = started.elapsed();
    let started = Instant::now();
    client
        .destroy_sandbox(wire::DestroySandboxRequest {
            idempotency_key: format!("{sandbox}:bench:undo"),
            sandbox_id: sandbox.to_string(),
        })
        .await
        .expect("DestroySandbox");
    (created, started.elapsed())
}

/// The create saga end to end, then the destroy saga. Returns (create, destroy, sandbox).
async fn saga_create(
    platform: &BenchPlatform,
    spans: &SpanTimes,
    project: ProjectId,
    measured: bool,
) -> (Duration, Duration, SandboxId) {
    let service = platform.control().service();
    let sandbox = SandboxId::new();
    let params = CreateParams {
        sandbox_id: sandbox,
        org_id: platform.org,
        project_id: Some(project),
        project_name: Some("bench".to_owned()),
        template: "host-system".to_owned(),
        cpu_count: 1,
        memory_mb: 512,
        timeout_sec: 300,
        envs: Default::default(),
        boot: BootFrom::Fresh,
        metadata: Default::default(),
        runtime: Default::default(),
    };
    if measured {
        spans.record_as(SAGA_VARIANT);
    }
    let started = Instant::now();
    let record = service.create(params).await.expect("the create saga");
    let created = started.elapsed();
    spans.stop();
    assert_eq!(record.status, osb_store::SandboxStatus::Running);
    (created, destroy(platform, sandbox).await, sandbox)
}

/// `POST /api/sandboxes {"project": "bench"}` over loopback HTTP (the gateway: key lookup,
/// validation, project lookup, then the same saga), then the destroy saga.
async fn rest_create(
    platform: &BenchPlatform,
    spans: &SpanTimes,
    measured: bool,
) -> (Duration, Duration, SandboxId) {
    if measured {
        spans.record_as(REST_VARIANT);
    }
    let started = Instant::now();
    let (status, body) = platform
        .call(
            "POST",
            "/api/sandboxes",
            Some(json!({ "project": "bench" })),
        )
        .await;
    let created = started.elapsed();
    spans.stop();
    assert_eq!(status, 201, "REST create: {body}");
    assert_eq!(body["status"], "running", "REST create: {body}");
    let sandbox: SandboxId = body["sandboxID"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a sandbox id in the REST answer");
    (created, destroy(platform, sandbox).await, sandbox)
}

/// The destroy saga (retried when it lost a race with the resume loop).
async fn destroy(platform: &BenchPlatform, sandbox: SandboxId) -> Duration {
    let service = platform.control().service();
    let started = Instant::now();
    // Before 4fa4c3b the control plane's resume loop re-claimed its own in-flight sagas and
    // could run this destroy concurrently; the loser failed with a conflict. Kept as a guard.
    let mut attempts = 0;
    loop {
        match service.destroy(platform.org, sandbox).await {
            Ok(_) => break,
            Err(osb_control::ControlError::Failed(message))
                if message.contains("changed concurrently") && attempts < 3 =>
            {
                attempts += 1;
                DESTROY_RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Err(error) => panic!("the destroy saga: {error:?}"),
        }
    }
    started.elapsed()
}

/// The span-recording labels of the two saga variants.
const SAGA_VARIANT: &str = "SandboxService::create";
const REST_VARIANT: &str = "REST POST /api/sandboxes";
/// Variants of the create part, interleaved in every round.
const CREATE_VARIANTS: usize = 4;

async fn bench_create(platform: &BenchPlatform, spans: &SpanTimes, count: usize) {
    let project = platform
        .store
        .find_project_by_name(platform.org, "bench")
        .await
        .expect("project lookup")
        .expect("project bench exists")
        .id;
    let mut client = platform
        .control()
        .service()
        .plane()
        .links
        .client(&WORKER.parse().expect("a worker name"))
        .await
        .expect("a link to the worker");
    let mut variants: [Variant; CREATE_VARIANTS] = Default::default();
    let mut saga_ids = Vec::new();
    for round in 0..WARM_UP + count {
        let measured = round >= WARM_UP;
        // Rotate the order so no variant always runs right after another's destroy.
        for offset in 0..CREATE_VARIANTS {
            let variant = (round + offset) % CREATE_VARIANTS;
            let (created, destroyed) = match variant {
                0 => bare_create(&mut client, project, false).await,
                1 => bare_create(&mut client, project, true).await,
                2 => {
                    let (created, destroyed, sandbox) =
                        saga_create(platform, spans, project, measured).await;
                    if measured {
                        saga_ids.push(SandboxService::create_saga_id(sandbox));
                    }
                    (created, destroyed)
                }
                _ => {
                    let (created, destroyed, _) = rest_create(platform, spans, measured).await;
                    (created, destroyed)
                }
            };
            if round >= WARM_UP {
                variants[variant].create.push(created);
                variants[variant].destroy.push(destroyed);
            }
        }
    }
    let [bare, bare_registered, saga, rest] = variants;

    // One autocommitted Postgres write, the unit of the saga log's cost.
    let mut write = Samples::default();
    let last = *saga_ids.last().expect("at least one saga");
    let probe = SandboxId::from_uuid(last.as_uuid());
    for _ in 0..50 {
        let started = Instant::now();
        platform
            .store
            .set_sandbox_runtime(probe, "netns", "enforced")
            .await
            .expect("an UPDATE");
        write.push(started.elapsed());
    }

    println!();
    println!("== create ({count} sandboxes per variant after {WARM_UP} warm-up rounds, interleaved; ratio = p50 / baseline p50)");
    print_row("baseline: worker CreateSandbox RPC", &bare.create, None);
    print_row(
        "worker CreateSandbox + RegisterSession RPCs",
        &bare_registered.create,
        Some(&bare.create),
    );
    print_row(
        "SandboxService::create (create saga, end to end)",
        &saga.create,
        Some(&bare.create),
    );
    println!(
        "  saga - bare RPC at p50: {:+.2} ms; saga mean {:.2} ms",
        ms(saga.create.p50()) - ms(bare.create.p50()),
        ms(saga.create.mean())
    );
    print_row(
        "REST POST /api/sandboxes (gateway + create saga)",
        &rest.create,
        Some(&bare.create),
    );
    println!(
        "  REST - bare RPC at p50: {:+.2} ms; REST - saga at p50: {:+.2} ms",
        ms(rest.create.p50()) - ms(bare.create.p50()),
        ms(rest.create.p50()) - ms(saga.create.p50())
    );
    print_row("baseline: worker DestroySandbox RPC", &bare.destroy, None);
    print_row(
        "SandboxService::destroy (destroy saga)",
        &saga.destroy,
        Some(&bare.destroy),
    );
    print_row("reference: one Postgres UPDATE (autocommit)", &write, None);
    print_saga_steps(platform, &saga_ids);
    spans.print(SAGA_VARIANT, count);
    spans.print(REST_VARIANT, count);
}

/// Per-step durations from the saga log: a step lasts from its `started` row to the next
/// step's (the last one to the saga's completion); before the first step is the saga row's
/// insert, the log read and the claim.
fn print_saga_steps(platform: &BenchPlatform, sagas: &[osb_proto::SagaId]) {
    let ids = sagas
        .iter()
        .map(|id| format!("'{}'", id.as_uuid()))
        .collect::<Vec<_>>()
        .join(",");
    let query = format!(
        "select s.id, l.seq, l.step, extract(epoch from l.created_at), \
         extract(epoch from s.created_at), extract(epoch from s.updated_at) \
         from saga_log l join sagas s on s.id = l.saga_id \
         where l.action = 'do' and s.id in ({ids}) order by s.id, l.seq"
    );
    let output = std::process::Command::new("psql")
        .args([platform.database.url(), "-At", "-F", "|", "-c", &query])
        .output()
        .expect("psql runs");
    if !output.status.success() {
        println!(
            "  (per-step durations unavailable: {})",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut per_saga: std::collections::BTreeMap<String, Vec<(String, f64, f64, f64)>> =
        Default::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('|').collect();
        let [id, _seq, step, at, created, updated] = fields[..] else {
            continue;
        };
        let number = |field: &str| field.parse::<f64>().expect("an epoch");
        per_saga.entry(id.to_owned()).or_default().push((
            step.to_owned(),
            number(at),
            number(created),
            number(updated),
        ));
    }
    let mut names: Vec<String> = vec!["(saga row, log read, claim)".to_owned()];
    let mut steps: std::collections::BTreeMap<String, Samples> = Default::default();
    let mut totals = Samples::default();
    for rows in per_saga.values() {
        let (_, first, created, updated) = rows[0].clone();
        let seconds = |value: f64| Duration::from_secs_f64(value.max(0.0));
        steps
            .entry(names[0].clone())
            .or_default()
            .push(seconds(first - created));
        for (index, (step, at, _, _)) in rows.iter().enumerate() {
            let end = rows.get(index + 1).map_or(updated, |next| next.1);
            if !names.contains(step) {
                names.push(step.clone());
            }
            steps
                .entry(step.clone())
                .or_default()
                .push(seconds(end - at));
        }
        totals.push(seconds(updated - created));
    }
    println!();
    println!("== create saga steps from the saga log (each includes its log writes and the claim renewal of the next)");
    for name in &names {
        let Some(samples) = steps.get(name) else {
            continue;
        };
        println!(
            "{:<40} p50 {:>7.2} ms  mean {:>7.2} ms  ({:>4.1}% of the mean saga)",
            name,
            ms(samples.p50()),
            ms(samples.mean()),
            100.0 * ms(samples.mean()) / ms(totals.mean()).max(1e-9)
        );
    }
    print_row("saga row created → completed (log time)", &totals, None);
}

async fn bench_secret_update(platform: &BenchPlatform, initial: &str, count: usize, rate: usize) {
    // A second project with the same secret and no sandbox: the PUT without fan-out.
    platform.project_with_key("idle").await;
    let (status, body) = platform
        .call(
            "POST",
            "/api/sandboxes",
            Some(json!({ "project": "bench" })),
        )
        .await;
    assert_eq!(status, 201, "sandbox create: {body}");
    let sandbox = body["sandboxID"].as_str().expect("a sandbox id").to_owned();
    // One curl, one keep-alive connection through the sealing proxy, `rate` requests a second,
    // detached from the exec (it dies with the sandbox).
    let script = format!(
        "setsid curl -s --rate {rate}/s -H \"x-api-key: $ANTHROPIC_API_KEY\" \
         'https://{LLM_HOST}/v1/messages?n=[1-100000000]' </dev/null >/dev/null 2>&1 &"
    );
    let (status, body) = platform
        .call(
            "POST",
            &format!("/api/sandboxes/{sandbox}/exec"),
            Some(json!({ "cmd": ["sh", "-c", script], "timeoutSec": 30 })),
        )
        .await;
    assert_eq!(status, 200, "exec: {body}");
    let seen = platform.origin.seen_keys.clone();
    let observe_start = Instant::now();
    if wait_for_key(&seen, 0, initial, Duration::from_secs(20)).is_none() {
        panic!("the origin never saw the sandbox's requests: {body}");
    }
    let seen_at_start = seen.lock().expect("origin log").len();

    let mut fan_out = Samples::default();
    let mut put_only = Samples::default();
    let mut visible = Samples::default();
    let mut after_put = Samples::default();
    for round in 0..WARM_UP + count {
        let measured = round >= WARM_UP;
        // Alternate which PUT goes first, so neither always follows the pause.
        let idle_first = round % 2 == 0;
        let mut idle_elapsed = Duration::ZERO;
        if idle_first {
            idle_elapsed = put_idle(platform, round).await;
        }
        let value = format!("bench-rotated-{round}-{}", uuid::Uuid::new_v4().simple());
        platform.origin.set_real_key(&value);
        let from = seen.lock().expect("origin log").len();
        let watcher = {
            let (seen, value) = (seen.clone(), value.clone());
            std::thread::spawn(move || wait_for_key(&seen, from, &value, Duration::from_secs(10)))
        };
        let started = Instant::now();
        let (status, body) = platform
            .call(
                "PUT",
                "/api/projects/bench/secrets/ANTHROPIC_API_KEY",
                Some(json!({ "value": value })),
            )
            .await;
        let put_elapsed = started.elapsed();
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["refreshed"], 1,
            "the running sandbox got the update: {body}"
        );
        let seen_at = watcher
            .join()
            .expect("watcher thread")
            .expect("the origin received the new value within 10 s");
        if !idle_first {
            idle_elapsed = put_idle(platform, round).await;
        }
        if measured {
            put_only.push(idle_elapsed);
            fan_out.push(put_elapsed);
            visible.push(seen_at.saturating_duration_since(started));
            after_put.push(seen_at.saturating_duration_since(started + put_elapsed));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let requests = seen.lock().expect("origin log").len() - seen_at_start;
    let achieved = requests as f64 / observe_start.elapsed().as_secs_f64();

    println!();
    println!(
        "== secret update → visible ({count} updates after {WARM_UP} warm-up; the sandbox sends {achieved:.0} req/s over one keep-alive connection, asked {rate}/s)"
    );
    print_row(
        "baseline: PUT secret, project without sandboxes",
        &put_only,
        None,
    );
    print_row(
        "PUT secret with fan-out to 1 running sandbox",
        &fan_out,
        Some(&put_only),
    );
    print_row(
        "PUT start → origin first receives the new value",
        &visible,
        Some(&put_only),
    );
    print_row(
        "  of which after the PUT returned (0: before its response)",
        &after_put,
        None,
    );
    let (status, body) = platform
        .call("DELETE", &format!("/api/sandboxes/{sandbox}"), None)
        .await;
    assert!(status == 200 || status == 204, "sandbox delete: {body}");
}

/// A PUT of the secret of the project without sandboxes (the write without fan-out).
async fn put_idle(platform: &BenchPlatform, round: usize) -> Duration {
    let value = format!("bench-idle-{round}-{}", uuid::Uuid::new_v4().simple());
    let started = Instant::now();
    let (status, body) = platform
        .call(
            "PUT",
            "/api/projects/idle/secrets/ANTHROPIC_API_KEY",
            Some(json!({ "value": value })),
        )
        .await;
    let elapsed = started.elapsed();
    assert_eq!(status, 200, "{body}");
    elapsed
}

/// Polls the origin's log from index `from` every 100 µs until `value` shows up; returns when.
fn wait_for_key(
    seen: &std::sync::Mutex<Vec<String>>,
    from: usize,
    value: &str,
    limit: Duration,
) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    let mut index = from;
    loop {
        {
            let keys = seen.lock().expect("origin log");
            if keys[index.min(keys.len())..].iter().any(|key| key == value) {
                return Some(Instant::now());
            }
            index = keys.len();
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}
