//! A standalone sealing proxy for load tests (`scripts/bench-proxy.sh`, the peer bench kit).
//! It registers one sandbox at 127.0.0.1 whose allowlist is the bench origin and whose one secret
//! maps `OSB_BENCH_TOKEN` to `OSB_BENCH_SECRET`; loopback upstreams are allowed (bench switch).
//!
//! ```text
//! bench_proxy --listen 127.0.0.1:18090 --data-dir /tmp/osb-proxy-bench [--workers 2] [--lanes N] [--init-ca]
//! env: OSB_BENCH_ORIGIN=localhost:18443 OSB_BENCH_ORIGIN_CA=… OSB_BENCH_TOKEN=… OSB_BENCH_SECRET=…
//! ```
//! `--init-ca` creates (or checks) the CA in the data dir, prints its path and exits. On SIGTERM or
//! Ctrl-C the proxy prints its Prometheus counters to stderr, so a run shows how many tokens it
//! substituted (the bench's own "/echo" check sees the token again, because responses are scrubbed),
//! and its peak resident set (`VmHWM`).

// The allocator of osbd, so these figures are the product's (ADR 0107).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/args.rs"]
mod args;

use args::{argument, runtime};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use osb_proto::{HostPattern, SandboxId, SealedToken};
use osb_proxy::{
    AddressPolicy, NullSink, OversizedBody, ProxyConfig, SealingProxy, SecretSpec, SecretValue,
    SessionSpec,
};

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("environment variable {name} is required"))
}

fn main() -> Result<(), String> {
    let listen: SocketAddr = argument("--listen")
        .unwrap_or_else(|| "127.0.0.1:18090".into())
        .parse()
        .map_err(|e| format!("--listen: {e}"))?;
    let data_dir = argument("--data-dir").unwrap_or_else(|| "/tmp/osb-proxy-bench".into());
    if std::env::args().any(|a| a == "--init-ca") {
        let ca = osb_proxy::ca::CertificateAuthority::load_or_create(
            data_dir.as_ref(),
            Duration::from_secs(7 * 86400),
        )
        .map_err(|e| e.to_string())?;
        println!("{}", ca.cert_path().display());
        return Ok(());
    }
    let origin = env("OSB_BENCH_ORIGIN")?;
    let origin_ca =
        std::fs::read(env("OSB_BENCH_ORIGIN_CA")?).map_err(|e| format!("origin ca: {e}"))?;
    let token: SealedToken = env("OSB_BENCH_TOKEN")?
        .parse()
        .map_err(|e| format!("OSB_BENCH_TOKEN: {e}"))?;
    let secret = SecretValue::new(env("OSB_BENCH_SECRET")?.into_bytes());
    let (origin_host, _) = origin
        .rsplit_once(':')
        .ok_or("OSB_BENCH_ORIGIN must be host:port")?;

    let mut config = ProxyConfig::new(&data_dir);
    config.explicit_listen = listen;
    config.addresses = AddressPolicy {
        allow_loopback: true,
        allow_private: false,
    };
    config.use_system_roots = false;
    config.extra_upstream_ca_pems = vec![origin_ca];
    config.resolve_overrides.insert(
        origin_host.to_ascii_lowercase(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    );
    config.oversized_body = OversizedBody::Rechunk;
    if let Some(lanes) = argument("--lanes") {
        config.lanes = lanes.parse().map_err(|e| format!("--lanes: {e}"))?;
    }

    let runtime = runtime()?;
    runtime.block_on(async move {
        let proxy = SealingProxy::start(config, Arc::new(NullSink))
            .await
            .map_err(|e| e.to_string())?;
        let allowlist = vec![HostPattern::parse(&origin).map_err(|e| e.to_string())?];
        proxy
            .register_session(SessionSpec {
                sandbox_id: SandboxId::new(),
                source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                egress_allowlist: allowlist,
                secrets: vec![SecretSpec {
                    name: "BENCH_SECRET".into(),
                    token,
                    value: secret,
                    allowed_hosts: vec![],
                    version: 0,
                }],
            })
            .map_err(|e| e.to_string())?;
        eprintln!(
            "bench proxy listening on {} (ca {})",
            proxy.explicit_addr(),
            proxy.ca_cert_path().display()
        );
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| e.to_string())?;
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        eprint!("{}", proxy.render_metrics());
        // The peak resident set, for the bench's memory column (issue 19).
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            for line in status.lines().filter(|line| line.starts_with("VmHWM:")) {
                eprintln!("{line}");
            }
        }
        Ok::<(), String>(())
    })
}
