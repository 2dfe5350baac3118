//! Warm pool benchmark (root only, ADR 0208): create→ready and create→first exec of a sandbox
//! claimed from the warm pool against one built cold, **interleaved in one run** on one runtime
//! (pool of 4, refilled and idle before every sample so no background build overlaps a
//! measurement), with each create's step breakdown taken from its `create_step` spans, and a
//! host process spawn (`sh -c true`) as the baseline measured in the same run. The pool is told
//! the proxy's ports, as `osbd worker` tells it. Run with
//! `cargo bench -p osb-vm --bench warm_pool`; it uses its own prefix (`osbpool`), address pool
//! (`100.102.0.0/16`) and a temporary data dir, and reaps everything at the end.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use osb_vm::netns::{reap_worker, unavailable_reason};
use osb_vm::{ExecRequest, LogSink, NetnsConfig, NetnsRuntime, Runtime, SandboxSpec};
use support::{baseline_spawn, ms, percentile};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Samples per path (`OSB_BENCH_SAMPLES` overrides, for a quick look).
fn samples() -> usize {
    std::env::var("OSB_BENCH_SAMPLES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(100)
}
const POOL: usize = 4;

/// (path, step) → durations of finished `create_step` spans (and `warm_pool_build`).
type Steps = Arc<Mutex<Vec<(String, String, Duration)>>>;

/// Times every `create_step` span from creation to close.
struct StepTimer {
    steps: Steps,
}

struct Started {
    at: Instant,
    path: String,
    step: String,
}

#[derive(Default)]
struct StepFields {
    path: String,
    step: String,
}

impl Visit for StepFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "path" => self.path = value.to_owned(),
            "step" => self.step = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for StepTimer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let name = attrs.metadata().name();
        if name != "create_step" && name != "warm_pool_build" {
            return;
        }
        let mut fields = StepFields::default();
        attrs.record(&mut fields);
        if name == "warm_pool_build" {
            fields = StepFields {
                path: "pool".into(),
                step: "build (background)".into(),
            };
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Started {
                at: Instant::now(),
                path: fields.path,
                step: fields.step,
            });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let extensions = span.extensions();
        let Some(started) = extensions.get::<Started>() else {
            return;
        };
        if let Ok(mut steps) = self.steps.lock() {
            steps.push((
                started.path.clone(),
                started.step.clone(),
                started.at.elapsed(),
            ));
        }
    }
}

/// The shared bench spec with an allowlist and a user env, as a real create has.
fn spec() -> SandboxSpec {
    let mut spec = support::spec();
    spec.egress_allowlist = vec!["api.example.com".into()];
    spec.user_envs.insert("GREETING".into(), "hello".into());
    spec
}

/// One sample: create→ready and create→first exec, with the steps the create's spans saw.
struct Sample {
    ready: Duration,
    first_exec: Duration,
    second_exec: Duration,
    steps: Vec<(String, Duration)>,
}

async fn sample(runtime: &NetnsRuntime, steps: &Steps, claim: bool) -> Sample {
    assert!(runtime.wait_for_warm_pool(Duration::from_secs(120)).await);
    steps.lock().expect("steps").clear();
    let spec = spec();
    let id = spec.id;
    let claims = runtime.warm_pool_claims();
    let start = Instant::now();
    if claim {
        runtime.create(spec).await.expect("create");
    } else {
        runtime.create_cold(spec).await.expect("cold create");
    }
    let ready = start.elapsed();
    let out = runtime
        .exec(id, ExecRequest::new(["true"]))
        .await
        .expect("exec");
    assert_eq!(out.exit_code, 0);
    let first_exec = start.elapsed();
    let second = Instant::now();
    runtime
        .exec(id, ExecRequest::new(["true"]))
        .await
        .expect("exec");
    let second_exec = second.elapsed();
    assert_eq!(runtime.warm_pool_claims() - claims, u64::from(claim));
    let path = if claim { "claim" } else { "cold" };
    let taken: Vec<(String, Duration)> = steps
        .lock()
        .expect("steps")
        .drain(..)
        .filter(|(p, _, _)| p == path)
        .map(|(_, step, duration)| (step, duration))
        .collect();
    runtime.destroy(id).await.expect("destroy");
    Sample {
        ready,
        first_exec,
        second_exec,
        steps: taken,
    }
}

fn report(label: &str, samples: &mut [Sample], baseline: Duration) {
    let mut ready: Vec<Duration> = samples.iter().map(|s| s.ready).collect();
    let mut first: Vec<Duration> = samples.iter().map(|s| s.first_exec).collect();
    let (ready_50, ready_99) = (percentile(&mut ready, 0.5), percentile(&mut ready, 0.99));
    let (first_50, first_99) = (percentile(&mut first, 0.5), percentile(&mut first, 0.99));
    let mut second: Vec<Duration> = samples.iter().map(|s| s.second_exec).collect();
    println!(
        "{label:5} create -> ready       p50 {:7.2} ms  p99 {:7.2} ms  p50 ratio {:5.1}x baseline",
        ms(ready_50),
        ms(ready_99),
        ms(ready_50) / ms(baseline)
    );
    println!(
        "{label:5} create -> first exec  p50 {:7.2} ms  p99 {:7.2} ms  p50 ratio {:5.1}x baseline",
        ms(first_50),
        ms(first_99),
        ms(first_50) / ms(baseline)
    );
    println!(
        "{label:5} second exec `true`    p50 {:7.2} ms  p99 {:7.2} ms",
        ms(percentile(&mut second, 0.5)),
        ms(percentile(&mut second, 0.99))
    );
    let mut by_step: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut unaccounted = Vec::new();
    for sample in samples.iter() {
        let mut sum = Duration::ZERO;
        for (step, duration) in &sample.steps {
            if !order.contains(step) {
                order.push(step.clone());
            }
            by_step.entry(step.clone()).or_default().push(*duration);
            sum += *duration;
        }
        unaccounted.push(sample.ready.saturating_sub(sum));
    }
    for step in order {
        if let Some(durations) = by_step.get_mut(&step) {
            println!(
                "{label:5}   step {step:12} p50 {:7.2} ms  p99 {:7.2} ms",
                ms(percentile(durations, 0.5)),
                ms(percentile(durations, 0.99))
            );
        }
    }
    println!(
        "{label:5}   outside steps     p50 {:7.2} ms  p99 {:7.2} ms  (validation, table, locks)",
        ms(percentile(&mut unaccounted, 0.5)),
        ms(percentile(&mut unaccounted, 0.99))
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; test runners listing targets get an empty run.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    if let Some(reason) = unavailable_reason() {
        eprintln!("skipping the warm pool benchmark: {reason}");
        return;
    }
    let steps: Steps = Arc::default();
    let subscriber = tracing_subscriber::registry().with(StepTimer {
        steps: Arc::clone(&steps),
    });
    tracing::subscriber::set_global_default(subscriber).expect("a tracing subscriber");

    let temp = tempfile::tempdir().expect("temp dir");
    let data_dir = temp.path().join("data");
    let prefix = "osbpool";
    let mut config = NetnsConfig::new(prefix, &data_dir);
    config.address_pool = "100.102.0.0/16".parse().expect("pool");
    config.warm_pool = POOL;
    // As the worker does: pooled rules are made for the proxy's ports, so claims skip nft.
    config.warm_pool_proxy = Some(spec().proxy);
    let runtime = NetnsRuntime::new(config, Arc::new(LogSink))
        .await
        .expect("runtime");

    let mut baseline = Vec::new();
    let mut claimed = Vec::new();
    let mut cold = Vec::new();
    let mut builds = Vec::new();
    let count = samples();
    for _ in 0..count {
        baseline.push(baseline_spawn().await);
        claimed.push(sample(&runtime, &steps, true).await);
        // The refill's build of the claimed one's replacement, timed off the request path.
        assert!(runtime.wait_for_warm_pool(Duration::from_secs(120)).await);
        builds.extend(
            steps
                .lock()
                .expect("steps")
                .drain(..)
                .filter(|(path, _, _)| path == "pool")
                .map(|(_, _, duration)| duration),
        );
        cold.push(sample(&runtime, &steps, false).await);
    }
    runtime.shutdown().await.expect("shutdown");
    let census = runtime.census().await.expect("census");
    let _ = reap_worker(prefix, &data_dir).await;

    let base_p50 = percentile(&mut baseline, 0.5);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "warm pool benchmark ({count} claimed and {count} cold creates interleaved, pool of {POOL}, netns runtime; loadavg at end {})",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!(
        "baseline host spawn `sh -c true`   p50 {:7.2} ms",
        ms(base_p50)
    );
    report("claim", &mut claimed, base_p50);
    report("cold", &mut cold, base_p50);
    if !builds.is_empty() {
        println!(
            "pool  build (background, one at a time) p50 {:7.2} ms  p99 {:7.2} ms",
            ms(percentile(&mut builds, 0.5)),
            ms(percentile(&mut builds, 0.99))
        );
    }
    println!("left after shutdown: {census:?}");
}
