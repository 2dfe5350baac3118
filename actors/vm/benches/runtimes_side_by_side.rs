//! The two isolating runtimes side by side (root only): create→ready (create returns once the
//! sandbox runs commands) and warm exec latency (`true`, and `python3 -c pass`), measured in the
//! same run on the same machine, the netns runtime as the baseline. The microVM figures name the
//! accelerator (KVM when a probe VM boots with it, else TCG emulation). Run with
//! `cargo bench -p osb-vm --bench runtimes_side_by_side` after `scripts/build-guest.sh`; it uses
//! its own prefixes (`osbbnn`, `osbmbn`), pools (`100.101.200.0/24`, `100.82.250.0/24`) and
//! temporary data dirs, and reaps everything at the end.

// Shared with the other netns benches; this one needs only the spec and the arithmetic.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use osb_vm::microvm::{MicroVmConfig, MicroVmRuntime};
use osb_vm::netns::reap_worker;
use osb_vm::{ExecRequest, LogSink, NetnsConfig, NetnsRuntime, Runtime, RuntimeKind, SandboxSpec};

fn median_ms(samples: &mut [Duration]) -> f64 {
    support::ms(support::percentile(samples, 0.5))
}

/// The shared bench spec (256 MiB, placeholder CA) on `kind`.
fn spec(kind: RuntimeKind) -> SandboxSpec {
    let mut spec = support::spec();
    spec.runtime = kind;
    spec
}

struct Figures {
    create: f64,
    exec_true: f64,
    exec_python: f64,
}

async fn measure(
    runtime: &dyn Runtime,
    kind: RuntimeKind,
    creates: usize,
    execs: usize,
) -> Figures {
    let mut create_samples = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..creates {
        let spec = spec(kind);
        ids.push(spec.id);
        let started = Instant::now();
        runtime.create(spec).await.expect("create");
        create_samples.push(started.elapsed());
    }
    let id = ids[0];
    let run = |cmd: Vec<&'static str>| {
        let request = ExecRequest::new(cmd);
        async move {
            let started = Instant::now();
            let out = runtime.exec(id, request).await.expect("exec");
            assert_eq!(out.exit_code, 0, "{out:?}");
            started.elapsed()
        }
    };
    let mut true_samples = Vec::new();
    let mut python_samples = Vec::new();
    for _ in 0..execs {
        true_samples.push(run(vec!["true"]).await);
        python_samples.push(run(vec!["python3", "-c", "pass"]).await);
    }
    for id in ids {
        runtime.destroy(id).await.expect("destroy");
    }
    Figures {
        create: median_ms(&mut create_samples),
        exec_true: median_ms(&mut true_samples),
        exec_python: median_ms(&mut python_samples),
    }
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    tokio.block_on(async {
        let temp = tempfile::tempdir().expect("temp dir");
        // QEMU runs as an unprivileged uid: it must pass through to its directory.
        std::fs::set_permissions(
            temp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .expect("chmod");
        let netns_dir = temp.path().join("netns");
        let microvm_dir = temp.path().join("microvm");
        let mut netns_config = NetnsConfig::new("osbbnn", &netns_dir);
        netns_config.address_pool = "100.101.200.0/24".parse().expect("pool");
        let netns = NetnsRuntime::new(netns_config, Arc::new(LogSink))
            .await
            .expect("netns runtime (root)");
        let mut vm_config = MicroVmConfig::new("osbmbn", &microvm_dir);
        vm_config.host.address_pool = "100.82.250.0/24".parse().expect("pool");
        vm_config.disk_mb = 1024;
        let probe_started = Instant::now();
        let microvm = MicroVmRuntime::new(vm_config, Arc::new(LogSink))
            .await
            .expect("microVM runtime (root, qemu, scripts/build-guest.sh)");
        let accel = microvm.accel().name().to_uppercase();
        println!(
            "microVM runtime start (accelerator probe included): {:.0} ms",
            probe_started.elapsed().as_secs_f64() * 1000.0
        );
        let baseline = measure(&netns, RuntimeKind::Netns, 10, 20).await;
        let vm = measure(&microvm, RuntimeKind::Microvm, 3, 10).await;
        println!("| runtime | create→ready (median) | exec `true` (median) | exec `python3 -c pass` (median) |");
        println!("|---|---|---|---|");
        println!(
            "| netns (baseline) | {:.0} ms | {:.1} ms | {:.1} ms |",
            baseline.create, baseline.exec_true, baseline.exec_python
        );
        println!(
            "| microvm ({accel}) | {:.0} ms ({:.0}×) | {:.1} ms ({:.1}×) | {:.1} ms ({:.1}×) |",
            vm.create,
            vm.create / baseline.create,
            vm.exec_true,
            vm.exec_true / baseline.exec_true,
            vm.exec_python,
            vm.exec_python / baseline.exec_python
        );
        let _ = reap_worker("osbbnn", &netns_dir).await;
        let _ = reap_worker("osbmbn", &microvm_dir).await;
    });
}
