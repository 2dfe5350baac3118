//! What the netns runtime benches share: the placeholder CA, the sandbox spec they create, the
//! host-spawn baseline and the percentile arithmetic. Bench-only; never a real CA or secret.

use std::time::{Duration, Instant};

use osb_proto::SandboxId;
use osb_vm::{ProxyEndpoints, SandboxSpec};

/// A placeholder CA (the benches run no proxy; the sandbox only stores it).
pub const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBbench\n-----END CERTIFICATE-----\n";

/// The value at `fraction` (0.5 = median) of `samples`, nearest rank.
pub fn percentile(samples: &mut [Duration], fraction: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * fraction).round() as usize;
    samples[index]
}

/// Milliseconds as a float, for the tables.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A 256 MiB netns sandbox with the benches' fixed proxy ports.
pub fn spec() -> SandboxSpec {
    let mut spec = SandboxSpec::new(
        SandboxId::new(),
        ProxyEndpoints {
            transparent_port: 15001,
            explicit_port: 15002,
        },
        CA_PEM,
    );
    spec.memory_mb = 256;
    spec
}

/// The baseline: one `/bin/sh -c true` spawned on the host.
pub async fn baseline_spawn() -> Duration {
    let start = Instant::now();
    let status = tokio::process::Command::new("/bin/sh")
        .args(["-c", "true"])
        .status()
        .await;
    assert!(status.map(|s| s.success()).unwrap_or(false));
    start.elapsed()
}
