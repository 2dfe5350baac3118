//! `osbd up`: the whole platform in one process — the embedded SQLite database and in-process
//! bus unless `DATABASE_URL` / `NATS_URL` say otherwise, a development PKI (gRPC still runs
//! over mutual TLS on loopback), one worker with the best runtime available, the proxy, and the
//! gateway. On first start it creates the org `default` and writes the CLI's config (never
//! overwriting one), so `oc` works at once. Ctrl-C destroys every sandbox it runs (rows marked
//! destroyed, namespaces and rules removed) and stops.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use osb_proto::WorkerName;

use super::context::{ensure_data_dir, keyring_config, open_store, open_vault_on, CommandError};
use super::node_env::{default_capacity, proxy_options, shutdown_signal};
use crate::platform::{ControlNode, ControlNodeConfig};
use crate::settings::Settings;
use osb_cli::CliConfig;
use osb_gateway::ApiKey;
use osb_grpc::{pki, GrpcSecurity, GrpcSecurityConfig};
use osb_worker::{RuntimeOptions, WorkerNode, WorkerNodeConfig};

/// The org `osbd up` creates for the newcomer.
pub const DEFAULT_ORG: &str = "default";

/// Options of `osbd up`.
#[derive(Debug, Clone)]
pub(crate) struct UpArgs {
    pub listen: SocketAddr,
    pub prefix: String,
    pub pool: String,
    /// Allow the development runtime when netns is unavailable (ADR 0025).
    pub dev_runtime: bool,
    /// Size in MiB of each sandbox's disk (ADR 0207).
    pub sandbox_disk_mb: u32,
    /// Pre-built sandboxes the worker keeps ready (ADR 0208).
    pub warm_pool: usize,
}

pub(crate) async fn run(
    settings: &Settings,
    args: UpArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let listen = args.listen;
    let address_pool = args
        .pool
        .parse()
        .map_err(|error| CommandError::Usage(format!("--pool: {error}")))?;
    ensure_data_dir(settings)?;
    let proxy = proxy_options()?;
    let config = keyring_config(settings, err)?;
    let store = open_store(settings).await?;
    store.migrate_up().await?;
    let vault = open_vault_on(store, config, err).await?;
    let nats_url = std::env::var(osb_bus::NATS_URL_ENV).ok();
    let bus = osb_bus::connect_bus(nats_url.as_deref())
        .await
        .map_err(|error| CommandError::Failed(error.to_string()))?;

    let dev = pki::generate_dev_pki(&settings.data_dir.join("pki"))
        .map_err(|error| CommandError::Failed(format!("the development PKI: {error}")))?;
    let load = |paths| {
        GrpcSecurity::load(&GrpcSecurityConfig::MutualTls(paths))
            .map_err(|error| CommandError::Failed(format!("the development PKI: {error}")))
    };
    let worker_security = load(dev.worker_tls())?;
    let control_security = load(dev.control_tls())?;

    let worker = WorkerNode::start(
        WorkerNodeConfig {
            name: WorkerName::new(pki::DEV_IDENTITY_NAME)
                .map_err(|error| CommandError::Failed(error.to_string()))?,
            data_dir: settings.data_dir.join("worker"),
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            security: worker_security,
            netns_prefix: args.prefix,
            address_pool: Some(address_pool),
            proxy,
            capacity: default_capacity(),
            heartbeat_every: Duration::from_secs(1),
            runtimes: RuntimeOptions {
                allow_development: args.dev_runtime,
                microvm: None,
                sandbox_disk_mb: Some(args.sandbox_disk_mb),
                warm_pool: Some(args.warm_pool),
            },
            abort_after_record: None,
        },
        bus.clone(),
    )
    .await
    .map_err(CommandError::Failed)?;
    let control = ControlNode::start(ControlNodeConfig::new(listen, control_security), vault, bus)
        .await
        .map_err(CommandError::Failed)?;
    let Some(bound) = control.http_addrs().first().copied() else {
        return Err(CommandError::Failed("the gateway bound no address".into()));
    };
    let api_url = format!("http://{bound}");
    let development = worker.runtime().isolation() == osb_vm::Isolation::DevelopmentCooperative;
    default_org_opt_in(control.state(), development, err).await?;
    let cli = bootstrap_cli(control.state(), &api_url).await?;

    writeln!(out, "OpenSandbox is up")?;
    writeln!(out, "  data directory  {}", settings.data_dir.display())?;
    writeln!(out, "  database        {}", settings.database.describe())?;
    writeln!(
        out,
        "  bus             {}",
        if nats_url.is_some() {
            "NATS"
        } else {
            "in-process"
        }
    )?;
    writeln!(
        out,
        "  worker          {} ({})",
        worker.name(),
        runtime_label(&worker)
    )?;
    if !development {
        writeln!(
            out,
            "  sandbox disk    {} MiB each (--sandbox-disk-mb)",
            args.sandbox_disk_mb
        )?;
        writeln!(
            out,
            "  warm pool       {} pre-built sandboxes (--warm-pool)",
            args.warm_pool
        )?;
    }
    writeln!(out, "  gateway         {api_url}/api")?;
    writeln!(out, "  cli config      {cli}")?;
    writeln!(out)?;
    writeln!(out, "next, in another terminal:")?;
    writeln!(out, "  oc project create demo --allow api.anthropic.com")?;
    writeln!(
        out,
        "  printf %s \"$ANTHROPIC_API_KEY\" | oc secret set demo ANTHROPIC_API_KEY"
    )?;
    writeln!(out, "  oc create --project demo")?;
    writeln!(
        out,
        "  oc exec <sandbox-id> -- sh -c 'env | grep ANTHROPIC'"
    )?;
    writeln!(out, "Ctrl-C stops the platform and destroys its sandboxes.")?;
    writeln!(out, "ready {api_url}")?;
    out.flush()?;

    shutdown_signal().await;
    writeln!(err, "stopping: destroying sandboxes…")?;
    let destroyed = control.destroy_sandboxes_on(worker.name()).await;
    control.shutdown().await;
    worker.shutdown().await;
    writeln!(err, "stopped ({destroyed} sandbox(es) destroyed)")?;
    Ok(())
}

fn runtime_label(worker: &WorkerNode) -> &'static str {
    match worker.runtime().isolation() {
        osb_vm::Isolation::Enforced => "netns runtime, egress enforced",
        osb_vm::Isolation::DevelopmentCooperative => {
            "DEVELOPMENT runtime: egress is cooperative only"
        }
    }
}

/// The org `default` opts in to the development runtime exactly while this `osbd up` runs it
/// (ADR 0025): on when the worker is a development one, off again once netns works. Other
/// orgs are never opted in here.
async fn default_org_opt_in(
    state: &osb_gateway::AppState,
    development: bool,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let store = &state.store;
    let org = match store.find_org_by_name(DEFAULT_ORG).await? {
        Some(org) => org,
        None => store.create_org(DEFAULT_ORG).await?,
    };
    if org.development_runtime != development {
        store
            .set_org_development_runtime(org.id, development)
            .await?;
    }
    if development {
        writeln!(
            err,
            "WARNING: the org `{DEFAULT_ORG}` runs its sandboxes on the DEVELOPMENT runtime: plain processes, cooperative egress, readable data dir. Never run untrusted code here; run `osbd up` as root with iproute2, nftables, util-linux and e2fsprogs for the netns runtime."
        )?;
    }
    Ok(())
}

/// Makes sure the org `default` exists and the CLI config points here with a key of it.
/// Returns a description of what was done.
async fn bootstrap_cli(
    state: &osb_gateway::AppState,
    api_url: &str,
) -> Result<String, CommandError> {
    let Some(path) = CliConfig::default_path() else {
        return Ok("not written (no home directory); use OPENSANDBOX_API_KEY".into());
    };
    if path.exists() {
        return Ok(format!("{} (existing, left as is)", path.display()));
    }
    let store = &state.store;
    let org = match store.find_org_by_name(DEFAULT_ORG).await? {
        Some(org) => org,
        None => store.create_org(DEFAULT_ORG).await?,
    };
    let key = ApiKey::generate();
    store
        .insert_api_key(org.id, "osbd-up", &key.hash(), &key.display_prefix())
        .await?;
    let written = CliConfig::write_new(&path, api_url, key.expose())
        .map_err(|error| CommandError::Failed(format!("the CLI config: {error}")))?;
    if !written {
        // Another process wrote one first: it wins, and this key stays unused.
        return Ok(format!("{} (existing, left as is)", path.display()));
    }
    Ok(format!(
        "{} (org {DEFAULT_ORG}, new API key)",
        path.display()
    ))
}

/// Shared with `osbd control`: keeps the control node alive until a signal.
pub(crate) async fn serve_until_signal(control: ControlNode) {
    shutdown_signal().await;
    control.shutdown().await;
}

/// The bus of a standalone role: NATS when configured (required for a cluster).
pub(crate) async fn role_bus() -> Result<Arc<dyn osb_bus::Bus>, CommandError> {
    let nats_url = std::env::var(osb_bus::NATS_URL_ENV).ok();
    osb_bus::connect_bus(nats_url.as_deref())
        .await
        .map_err(|error| CommandError::Failed(error.to_string()))
}
