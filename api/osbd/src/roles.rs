//! `osbd control` and `osbd worker`: the distributed roles. Both need NATS (`NATS_URL`) and
//! mutual TLS from `OPENSANDBOX_GRPC_TLS_CA|CERT|KEY` (partial configuration is refused at
//! start; plaintext only on loopback with `OPENSANDBOX_GRPC_INSECURE_LOOPBACK=1`). A worker's
//! name is the name in its certificate. Both run until Ctrl-C / SIGTERM; a worker destroys its
//! sandboxes when it stops.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use osb_proto::WorkerName;

use super::context::{keyring_config, open_store, open_vault_on, CommandError};
use super::node_env::{default_capacity, proxy_options, shutdown_signal};
use super::up::{role_bus, serve_until_signal};
use crate::platform::{ControlNode, ControlNodeConfig};
use crate::settings::Settings;
use osb_grpc::{GrpcSecurity, PeerRole};
use osb_worker::{RuntimeOptions, WorkerNode, WorkerNodeConfig};

fn security() -> Result<GrpcSecurity, CommandError> {
    GrpcSecurity::from_env().map_err(|error| CommandError::Usage(error.to_string()))
}

fn require_nats() -> Result<(), CommandError> {
    if std::env::var(osb_bus::NATS_URL_ENV).is_err() {
        return Err(CommandError::Usage(format!(
            "{} is not set: the distributed roles talk over NATS (use `osbd up` for a single machine)",
            osb_bus::NATS_URL_ENV
        )));
    }
    Ok(())
}

/// `osbd control --listen ADDR`.
pub(crate) async fn control(
    settings: &Settings,
    listen: SocketAddr,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    require_nats()?;
    let security = security()?;
    if let Some(identity) = security.identity() {
        if identity.role() != PeerRole::Control {
            return Err(CommandError::Usage(format!(
                "the certificate names {identity}, not a control plane; issue one with `osbd certs issue control NAME`"
            )));
        }
    }
    let config = keyring_config(settings, err)?;
    let store = open_store(settings).await?;
    store.migrate_up().await?;
    let vault = open_vault_on(store, config, err).await?;
    let bus = role_bus().await?;
    let mut config = ControlNodeConfig::new(listen, security);
    config.crash_after = crate::failpoints::crash_after(err)?;
    let control = ControlNode::start(config, vault, bus)
        .await
        .map_err(CommandError::Failed)?;
    for address in control.http_addrs() {
        writeln!(out, "ready http://{address}")?;
    }
    out.flush()?;
    serve_until_signal(control).await;
    Ok(())
}

/// Options of `osbd worker`.
#[derive(Debug, Clone)]
pub(crate) struct WorkerArgs {
    pub listen: SocketAddr,
    pub advertise: Option<String>,
    pub prefix: String,
    pub pool: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub dev_runtime: bool,
    pub microvm: bool,
    /// Size in MiB of each sandbox's disk (ADR 0207).
    pub sandbox_disk_mb: u32,
    /// Pre-built sandboxes the worker keeps ready (ADR 0208).
    pub warm_pool: usize,
}

/// `osbd worker`.
pub(crate) async fn worker(
    settings: &Settings,
    args: WorkerArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    require_nats()?;
    let security = security()?;
    let name = match security.identity() {
        Some(identity) if identity.role() == PeerRole::Worker => identity
            .worker_name()
            .ok_or_else(|| CommandError::Usage(format!("{identity} is not a worker name")))?,
        Some(identity) => {
            return Err(CommandError::Usage(format!(
                "the certificate names {identity}, not a worker; issue one with `osbd certs issue worker NAME`"
            )))
        }
        None => WorkerName::new(osb_grpc::pki::DEV_IDENTITY_NAME)
            .map_err(|error| CommandError::Failed(error.to_string()))?,
    };
    let address_pool = args
        .pool
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|error| CommandError::Usage(format!("--pool: {error}")))?;
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| settings.data_dir.join("worker"));
    let microvm = if args.microvm {
        Some(microvm_config(&args.prefix, &data_dir)?)
    } else {
        None
    };
    let abort_after_record = crate::failpoints::worker_abort_after(err)?;
    let bus = role_bus().await?;
    let node = WorkerNode::start(
        WorkerNodeConfig {
            name,
            data_dir,
            grpc_listen: args.listen,
            advertise: args.advertise,
            security,
            netns_prefix: args.prefix,
            address_pool,
            proxy: proxy_options()?,
            capacity: default_capacity(),
            heartbeat_every: Duration::from_secs(1),
            runtimes: RuntimeOptions {
                allow_development: args.dev_runtime,
                microvm,
                sandbox_disk_mb: Some(args.sandbox_disk_mb),
                warm_pool: Some(args.warm_pool),
            },
            abort_after_record,
        },
        bus,
    )
    .await
    .map_err(CommandError::Failed)?;
    writeln!(
        out,
        "ready worker {} grpc {}",
        node.name(),
        node.grpc_addr().map(|a| a.to_string()).unwrap_or_default()
    )?;
    out.flush()?;
    shutdown_signal().await;
    writeln!(err, "stopping: destroying this worker's sandboxes…")?;
    node.shutdown().await;
    Ok(())
}

/// The microVM runtime's configuration beside a netns prefix: its own prefix (`<prefix>v`) and
/// data dir, because its reaper owns what they name.
fn microvm_config(
    prefix: &str,
    data_dir: &std::path::Path,
) -> Result<osb_vm::MicroVmConfig, CommandError> {
    if prefix.len() >= 8 {
        return Err(CommandError::Usage(format!(
            "--prefix {prefix:?}: with --microvm use at most 7 characters (the microVM runtime takes `{prefix}v`)"
        )));
    }
    Ok(osb_vm::MicroVmConfig::new(
        format!("{prefix}v"),
        data_dir.join("microvm"),
    ))
}
