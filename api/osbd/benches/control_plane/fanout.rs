//! Issue 17, items 2 and 4: many idle sandboxes on one worker, and one secret rotation reaching
//! all of them.
//!
//! * **density**: request latency through the sealing proxy from one sandbox (300 keep-alive
//!   requests with substitution, `curl -w %{time_total}`), first with its session the only one
//!   registered (the baseline), then with `count` sandboxes running; the bench process's RSS
//!   (control plane, worker and proxy are in it) and the sandboxes' cgroup memory, before and
//!   after, per idle sandbox.
//! * **rotation**: `PUT` of the project's secret while `count` sandboxes run; the PUT returns
//!   once every sandbox's session acknowledged the new version (the vault's delivery), so its
//!   duration is the time until the last sandbox holds the value. Baseline: the same PUT on a
//!   project without sandboxes, interleaved. After the last rotation every sandbox sends one
//!   request and the origin must see the newest value from each.

use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde_json::json;

use osbd::testkit::{Platform as BenchPlatform, LLM_HOST};

use crate::stats::{print_row, Samples};

/// Concurrent creates while filling the worker (the cores are the limit, ADR 0012's figures).
const CREATE_CONCURRENCY: usize = 4;

pub async fn bench_fanout(platform: &BenchPlatform, count: usize, rotations: usize) {
    platform.project_with_key("fan").await;
    platform.project_with_key("fan-idle").await;
    let first = create(platform).await;
    let one_session = proxy_latencies(platform, &first).await;
    let memory_before = memory(platform);

    let started = Instant::now();
    let others: Vec<String> = stream::iter(1..count)
        .map(|_| create(platform))
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    let fill = started.elapsed();
    let memory_after = memory(platform);
    let many_sessions = proxy_latencies(platform, &first).await;

    let mut put_idle = Samples::default();
    let mut put_fanout = Samples::default();
    let mut last_value = String::new();
    for round in 0..rotations {
        let idle_first = round % 2 == 0;
        if idle_first {
            put_idle.push(put(platform, "fan-idle", round, 0).await.0);
        }
        let (elapsed, value) = put(platform, "fan", round, count).await;
        put_fanout.push(elapsed);
        last_value = value;
        if !idle_first {
            put_idle.push(put(platform, "fan-idle", round, 0).await.0);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let using_new = every_sandbox_uses(platform, &first, &others, &last_value).await;

    println!();
    println!(
        "== density: {count} idle sandboxes on one worker (filled in {:.1} s at {CREATE_CONCURRENCY} concurrent creates)",
        fill.as_secs_f64()
    );
    print_row(
        "baseline: proxy request, 1 session registered",
        &one_session,
        None,
    );
    print_row(
        &format!("proxy request, {count} sessions registered"),
        &many_sessions,
        Some(&one_session),
    );
    let idle = (count - 1).max(1) as f64;
    let per_sandbox = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(before), Some(after)) => {
            format!(
                "{:.2} MiB",
                after.saturating_sub(before) as f64 / idle / 1048576.0
            )
        }
        _ => "unknown".to_owned(),
    };
    println!(
        "memory per idle sandbox: bench process RSS (control plane + worker + proxy) {}, sandbox cgroups {} (RSS {} → {} MiB)",
        per_sandbox(memory_before.0, memory_after.0),
        per_sandbox(memory_before.1, memory_after.1),
        memory_before.0.unwrap_or(0) / 1048576,
        memory_after.0.unwrap_or(0) / 1048576,
    );
    println!();
    println!("== secret rotation reaching {count} running sandboxes ({rotations} rotations)");
    print_row(
        "baseline: PUT secret, project without sandboxes",
        &put_idle,
        None,
    );
    print_row(
        &format!("PUT secret, acknowledged by all {count} sandboxes"),
        &put_fanout,
        Some(&put_idle),
    );
    println!("sandboxes whose next request carried the newest value: {using_new} of {count}");

    let all: Vec<String> = std::iter::once(first).chain(others).collect();
    stream::iter(all)
        .for_each_concurrent(CREATE_CONCURRENCY, |sandbox| async move {
            let (status, body) = platform
                .call("DELETE", &format!("/api/sandboxes/{sandbox}"), None)
                .await;
            assert!(status == 200 || status == 204, "delete: {body}");
        })
        .await;
}

async fn create(platform: &BenchPlatform) -> String {
    let (status, body) = platform
        .call(
            "POST",
            "/api/sandboxes",
            Some(json!({ "project": "fan", "memoryMB": 128 })),
        )
        .await;
    assert_eq!(status, 201, "sandbox create: {body}");
    body["sandboxID"].as_str().expect("an id").to_owned()
}

/// 300 keep-alive requests with substitution from inside `sandbox`; the first 20 (connection
/// setup, warm-up) are dropped.
async fn proxy_latencies(platform: &BenchPlatform, sandbox: &str) -> Samples {
    let script = format!(
        "curl -s -o /dev/null -w '%{{time_total}}\\n' -H \"x-api-key: $ANTHROPIC_API_KEY\" \
         'https://{LLM_HOST}/v1/messages?n=[1-300]'"
    );
    let (code, stdout, stderr) = platform.sh(sandbox, &script).await;
    assert_eq!(code, 0, "curl in the sandbox: {stderr}");
    let mut samples = Samples::default();
    for line in stdout.lines().skip(20) {
        if let Ok(seconds) = line.trim().parse::<f64>() {
            samples.push(Duration::from_secs_f64(seconds));
        }
    }
    assert!(
        samples.len() >= 200,
        "curl timed too few requests: {stdout}"
    );
    samples
}

/// (bench process RSS, sum of the sandboxes' cgroup memory), in bytes, where readable.
fn memory(platform: &BenchPlatform) -> (Option<u64>, Option<u64>) {
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024);
    let cgroups = platform
        .prefixes
        .iter()
        .map(|(prefix, _)| {
            ["/sys/fs/cgroup", "/sys/fs/cgroup/memory"]
                .iter()
                .find_map(|root| {
                    let dir = std::path::Path::new(root).join(prefix);
                    ["memory.current", "memory.usage_in_bytes"]
                        .iter()
                        .find_map(|file| std::fs::read_to_string(dir.join(file)).ok())
                })
                .and_then(|text| text.trim().parse::<u64>().ok())
        })
        .sum::<Option<u64>>();
    (rss, cgroups)
}

/// PUTs a new value of the project's secret: (duration, value). With `expected` sandboxes,
/// checks that each acknowledged it.
async fn put(
    platform: &BenchPlatform,
    project: &str,
    round: usize,
    expected: usize,
) -> (Duration, String) {
    let value = format!("bench-fan-{round}-{}", uuid::Uuid::new_v4().simple());
    if expected > 0 {
        platform.origin.set_real_key(&value);
    }
    let started = Instant::now();
    let (status, body) = platform
        .call(
            "PUT",
            &format!("/api/projects/{project}/secrets/ANTHROPIC_API_KEY"),
            Some(json!({ "value": value })),
        )
        .await;
    let elapsed = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["refreshed"],
        json!(expected),
        "every running sandbox acknowledged: {body}"
    );
    (elapsed, value)
}

/// How many sandboxes' next request reached the origin with `value`.
async fn every_sandbox_uses(
    platform: &BenchPlatform,
    first: &str,
    others: &[String],
    value: &str,
) -> usize {
    let sandboxes: Vec<&str> = std::iter::once(first)
        .chain(others.iter().map(String::as_str))
        .collect();
    let seen = platform.origin.seen_keys.clone();
    let from = seen.lock().expect("origin log").len();
    let codes: Vec<String> = stream::iter(sandboxes)
        .map(|sandbox| async move { platform.curl_origin(sandbox).await.0 })
        .buffer_unordered(CREATE_CONCURRENCY)
        .collect()
        .await;
    let log = seen.lock().expect("origin log");
    let fresh = log[from..]
        .iter()
        .filter(|key| key.as_str() == value)
        .count();
    let ok = codes.iter().filter(|code| code.as_str() == "200").count();
    fresh.min(ok)
}
