//! Sandbox runtime benchmark (root only): create→first exec latency over 100 sandboxes, warm
//! exec latency, and the memory cost of 100 concurrent idle sandboxes, each against a baseline
//! measured in the same run (spawning `/bin/sh -c true` directly on the host). Run with
//! `cargo bench -p osb-vm --bench create_to_exec`; it uses its own prefix (`osbbench`), pool
//! (`100.101.0.0/16`) and a temporary data dir, and reaps everything at the end.

mod support;

use std::sync::Arc;
use std::time::Instant;

use osb_vm::netns::{reap_worker, unavailable_reason};
use osb_vm::{ExecRequest, LogSink, NetnsConfig, NetnsRuntime, Runtime};
use support::{baseline_spawn, ms, percentile, spec};

const SANDBOXES: usize = 100;

fn mem_available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("MemAvailable:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|value| value.parse().ok())
        })
        .unwrap_or(0)
}

/// Sum of one field (`Rss:` or `Pss:`) of `/proc/<pid>/smaps_rollup` over `pids`, in KiB.
fn smaps_kib_of(pids: &[i32], field: &str) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|value| value.parse::<u64>().ok())
        })
        .sum()
}

fn sandbox_pids(prefix: &str) -> Vec<i32> {
    let root = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        format!("/sys/fs/cgroup/{prefix}")
    } else {
        format!("/sys/fs/cgroup/pids/{prefix}")
    };
    std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| std::fs::read_to_string(entry.path().join("cgroup.procs")).ok())
                .flat_map(|text| {
                    text.lines()
                        .filter_map(|l| l.trim().parse().ok())
                        .collect::<Vec<i32>>()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; test runners listing targets (`--list`) or running them
    // without it get an empty, successful run instead of a minute-long benchmark.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    if let Some(reason) = unavailable_reason() {
        eprintln!("skipping the sandbox runtime benchmark: {reason}");
        return;
    }
    let temp = tempfile::tempdir().expect("temp dir");
    let data_dir = temp.path().join("data");
    let prefix = "osbbench";
    let mut config = NetnsConfig::new(prefix, &data_dir);
    config.address_pool = "100.101.0.0/16".parse().expect("pool");
    let runtime = NetnsRuntime::new(config, Arc::new(LogSink))
        .await
        .expect("runtime");

    // create → first exec, sandbox by sandbox (each destroyed afterwards), interleaved with the
    // baseline (a plain host process spawn) so both see the same machine load.
    let mut baseline = Vec::new();
    let mut create_only = Vec::new();
    let mut create_to_exec = Vec::new();
    let mut warm_exec = Vec::new();
    for _ in 0..SANDBOXES {
        baseline.push(baseline_spawn().await);
        let spec = spec();
        let id = spec.id;
        let start = Instant::now();
        runtime.create(spec).await.expect("create");
        create_only.push(start.elapsed());
        let out = runtime
            .exec(id, ExecRequest::new(["true"]))
            .await
            .expect("exec");
        assert_eq!(out.exit_code, 0);
        create_to_exec.push(start.elapsed());
        let warm = Instant::now();
        runtime
            .exec(id, ExecRequest::new(["true"]))
            .await
            .expect("exec");
        warm_exec.push(warm.elapsed());
        runtime.destroy(id).await.expect("destroy");
    }

    // 100 concurrent idle sandboxes: memory cost.
    let available_before = mem_available_kib();
    let mut ids = Vec::new();
    for _ in 0..SANDBOXES {
        let spec = spec();
        ids.push(spec.id);
        runtime.create(spec).await.expect("create");
    }
    for id in &ids {
        runtime
            .exec(*id, ExecRequest::new(["true"]))
            .await
            .expect("exec");
    }
    let pids = sandbox_pids(prefix);
    let rss = smaps_kib_of(&pids, "Rss:");
    let pss = smaps_kib_of(&pids, "Pss:");
    let available_after = mem_available_kib();
    for id in ids {
        runtime.destroy(id).await.expect("destroy");
    }
    let census = runtime.census().await.expect("census");
    let _ = reap_worker(prefix, &data_dir).await;

    let base_p50 = percentile(&mut baseline, 0.5);
    let create_p50 = percentile(&mut create_only, 0.5);
    let create_p99 = percentile(&mut create_only, 0.99);
    let first_p50 = percentile(&mut create_to_exec, 0.5);
    let first_p99 = percentile(&mut create_to_exec, 0.99);
    let warm_p50 = percentile(&mut warm_exec, 0.5);
    let warm_p99 = percentile(&mut warm_exec, 0.99);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "sandbox runtime benchmark ({SANDBOXES} sandboxes, netns runtime; loadavg at end {})",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "baseline host spawn `sh -c true`   p50 {:7.2} ms",
        ms(base_p50)
    );
    println!("create (ready)                     p50 {:7.2} ms  p99 {:7.2} ms  p50 ratio {:5.1}x baseline", ms(create_p50), ms(create_p99), ms(create_p50) / ms(base_p50));
    println!("create -> first exec done          p50 {:7.2} ms  p99 {:7.2} ms  p50 ratio {:5.1}x baseline", ms(first_p50), ms(first_p99), ms(first_p50) / ms(base_p50));
    println!("warm exec `true`                   p50 {:7.2} ms  p99 {:7.2} ms  p50 ratio {:5.1}x baseline", ms(warm_p50), ms(warm_p99), ms(warm_p50) / ms(base_p50));
    println!("{SANDBOXES} idle sandboxes: {} processes, PSS {:.1} MiB total ({:.0} KiB each), RSS {:.1} MiB (shared pages counted per process); host MemAvailable dropped {:.1} MiB ({:.0} KiB each)",
        pids.len(), pss as f64 / 1024.0, pss as f64 / SANDBOXES as f64, rss as f64 / 1024.0,
        available_before.saturating_sub(available_after) as f64 / 1024.0,
        available_before.saturating_sub(available_after) as f64 / SANDBOXES as f64);
    println!("left after destroy: {census:?}");
}
