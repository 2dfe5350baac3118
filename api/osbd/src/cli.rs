//! Argument parsing (clap) and dispatch.

use std::io::Write;

use clap::{Parser, Subcommand};

use super::certs::CertsCommand;
use super::context::CommandError;
use super::{admin, certs, gateway, init, keys, migrate, roles, up};
use crate::settings::Settings;

/// Environment variable of `--sandbox-disk-mb` (ADR 0207).
pub const SANDBOX_DISK_MB_ENV: &str = "OPENSANDBOX_SANDBOX_DISK_MB";
const DEFAULT_SANDBOX_DISK_MB: u32 = osb_vm::config::DEFAULT_SANDBOX_DISK_MB;
const MIN_SANDBOX_DISK_MB: i64 = osb_vm::spec::MIN_DISK_MB as i64;
/// Environment variable of `--warm-pool` (ADR 0208).
pub const WARM_POOL_ENV: &str = "OPENSANDBOX_WARM_POOL";
/// Pre-built sandboxes a worker keeps by default: creates that fit them skip most of the work.
pub const DEFAULT_WARM_POOL: usize = 2;
const MAX_WARM_POOL: i64 = osb_vm::config::MAX_WARM_POOL as i64;

/// OpenSandbox daemon.
#[derive(Debug, Parser)]
#[command(name = "osbd", version, about = "OpenSandbox daemon: control plane and worker", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare the data directory, database schema and encryption keys, then print what to do next
    Init,
    /// Manage the database schema
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Manage secret-encryption master keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create orgs and API keys
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Serve the REST API on an address (API keys, projects, secrets, health)
    Gateway {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Create the gRPC certificate authority and control-plane / worker certificates
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Start the whole platform on this machine (database, bus, worker, proxy, gateway) and
    /// configure the `oc` CLI for it
    Up {
        /// Address the REST API listens on
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Prefix of the worker's host objects (namespaces, veths, nftables tables)
        #[arg(long, default_value = "osb")]
        prefix: String,
        /// Address pool of sandbox links
        #[arg(long, default_value = "100.96.0.0/16")]
        pool: String,
        /// Allow the cooperative development runtime when the netns runtime is unavailable
        /// (not root, tools missing); the org `default` then opts in to it. Never for untrusted
        /// code: its sandboxes are plain processes
        #[arg(long)]
        dev_runtime: bool,
        /// Size in MiB of each sandbox's disk (its writable layer): the most one sandbox can
        /// write to this worker's data filesystem (ADR 0207)
        #[arg(long, env = SANDBOX_DISK_MB_ENV, default_value_t = DEFAULT_SANDBOX_DISK_MB,
              value_parser = clap::value_parser!(u32).range(MIN_SANDBOX_DISK_MB..))]
        sandbox_disk_mb: u32,
        /// Pre-built sandboxes (0-64) the worker keeps ready: a create of the common shape
        /// claims one instead of building it (ADR 0208); 0 builds every sandbox on demand
        #[arg(long, env = WARM_POOL_ENV, default_value_t = DEFAULT_WARM_POOL,
              value_parser = warm_pool_size)]
        warm_pool: usize,
    },
    /// Run a control plane (gateway, placement, sagas); needs NATS_URL and gRPC TLS settings
    Control {
        /// Address the REST API listens on
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Run a worker (sandbox runtime, sealing proxy, gRPC service); needs NATS_URL and gRPC TLS
    Worker {
        /// Address the worker's gRPC service listens on
        #[arg(long, default_value = "0.0.0.0:7443")]
        listen: std::net::SocketAddr,
        /// host:port control planes dial (default: the bound address)
        #[arg(long)]
        advertise: Option<String>,
        /// Prefix of this worker's host objects (distinct per worker on one host)
        #[arg(long, default_value = "osb")]
        prefix: String,
        /// Address pool of sandbox links, e.g. 100.96.0.0/16 (distinct per worker on one host)
        #[arg(long)]
        pool: Option<String>,
        /// The worker's own directory (default: <data dir>/worker)
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
        /// Allow the cooperative development runtime when the netns runtime is unavailable; the
        /// worker then advertises `dev` and serves only orgs that opted in. Never for
        /// untrusted code
        #[arg(long)]
        dev_runtime: bool,
        /// Also offer the microVM runtime (QEMU microvm; guest image from OSB_GUEST_DIR)
        #[arg(long)]
        microvm: bool,
        /// Size in MiB of each sandbox's disk (its writable layer): the most one sandbox can
        /// write to this worker's data filesystem (ADR 0207)
        #[arg(long, env = SANDBOX_DISK_MB_ENV, default_value_t = DEFAULT_SANDBOX_DISK_MB,
              value_parser = clap::value_parser!(u32).range(MIN_SANDBOX_DISK_MB..))]
        sandbox_disk_mb: u32,
        /// Pre-built sandboxes (0-64) the worker keeps ready: a create of the common shape
        /// claims one instead of building it (ADR 0208); 0 builds every sandbox on demand
        #[arg(long, env = WARM_POOL_ENV, default_value_t = DEFAULT_WARM_POOL,
              value_parser = warm_pool_size)]
        warm_pool: usize,
    },
}

/// Parses `--warm-pool`: a whole number of sandboxes from 0 to 64.
fn warm_pool_size(text: &str) -> Result<usize, String> {
    let value: i64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number: give 0 to {MAX_WARM_POOL} sandboxes"))?;
    if (0..=MAX_WARM_POOL).contains(&value) {
        usize::try_from(value).map_err(|e| e.to_string())
    } else {
        Err(format!(
            "{value} sandboxes is out of range: give 0 (no pool) to {MAX_WARM_POOL}"
        ))
    }
}

/// `osbd migrate …`
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply every pending migration
    Up,
    /// Revert every migration (drops all OpenSandbox tables and their data)
    Down {
        /// Required: confirms that all data will be deleted
        #[arg(long)]
        yes_delete_everything: bool,
    },
    /// List applied and pending migrations
    Status,
}

/// `osbd admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an org and print its first API key (once)
    CreateOrg {
        /// Org name: lowercase letters, digits and '-'
        name: String,
    },
    /// Create another API key for an existing org and print it (once)
    CreateKey {
        /// The org's name
        org: String,
        /// A label for the key
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// The key lifecycle: list, create (with scope and expiry), revoke, rotate
    #[command(subcommand)]
    Keys(crate::admin_keys::AdminKeysCommand),
    /// Show or change an org's settings
    Org {
        /// The org's name
        name: String,
        /// Opt the org in to (`on`) or out of (`off`) development workers, whose egress
        /// control is cooperative (ADR 0025)
        #[arg(long, value_parser = ["on", "off"])]
        development_runtime: Option<String>,
        /// Most active sandboxes the org may hold (a number, or `none`) (ADR 0027)
        #[arg(long)]
        max_sandboxes: Option<String>,
        /// Most CPUs its active sandboxes may hold together (a number, or `none`)
        #[arg(long)]
        max_cpus: Option<String>,
        /// Most MiB of memory its active sandboxes may hold together (a number, or `none`)
        #[arg(long)]
        max_memory_mb: Option<String>,
        /// Most MiB its checkpoints and golden snapshots may take on workers' disks together
        /// (a number, or `none`) (ADR 0032)
        #[arg(long)]
        max_checkpoint_mb: Option<String>,
    },
}

/// `osbd keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a fresh random master key (64 hex characters) to stdout
    Generate,
    /// Show every registered key version, whether it is configured and how many secrets use it
    Status,
    /// Re-encrypt every stored secret under the current primary key (resumable, safe to rerun)
    Rewrap {
        /// Secrets per database round trip
        #[arg(long, default_value_t = 100)]
        batch_size: u64,
    },
}

/// Runs a parsed command. Human output goes to `out`, guidance and warnings to `err`.
pub async fn run(
    cli: Cli,
    settings: &Settings,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    match cli.command {
        Command::Init => init::run(settings, out, err).await,
        Command::Migrate(command) => migrate::run(command, settings, out).await,
        Command::Keys(KeysCommand::Generate) => keys::generate(out, err),
        Command::Keys(KeysCommand::Status) => keys::status(settings, out, err).await,
        Command::Keys(KeysCommand::Rewrap { batch_size }) => {
            keys::rewrap(settings, batch_size, out, err).await
        }
        Command::Certs(command) => certs::run(command, out),
        Command::Gateway { listen } => gateway::run(settings, listen, out, err).await,
        Command::Up {
            listen,
            prefix,
            pool,
            dev_runtime,
            sandbox_disk_mb,
            warm_pool,
        } => {
            up::run(
                settings,
                up::UpArgs {
                    listen,
                    prefix,
                    pool,
                    dev_runtime,
                    sandbox_disk_mb,
                    warm_pool,
                },
                out,
                err,
            )
            .await
        }
        Command::Control { listen } => roles::control(settings, listen, out, err).await,
        Command::Worker {
            listen,
            advertise,
            prefix,
            pool,
            data_dir,
            dev_runtime,
            microvm,
            sandbox_disk_mb,
            warm_pool,
        } => {
            let args = roles::WorkerArgs {
                listen,
                advertise,
                prefix,
                pool,
                data_dir,
                dev_runtime,
                microvm,
                sandbox_disk_mb,
                warm_pool,
            };
            roles::worker(settings, args, out, err).await
        }
        Command::Admin(AdminCommand::CreateOrg { name }) => {
            admin::create_org(settings, &name, out, err).await
        }
        Command::Admin(AdminCommand::CreateKey { org, name }) => {
            admin::create_key(settings, &org, &name, out, err).await
        }
        Command::Admin(AdminCommand::Keys(command)) => {
            crate::admin_keys::run(command, settings, out, err).await
        }
        Command::Admin(AdminCommand::Org {
            name,
            development_runtime,
            max_sandboxes,
            max_cpus,
            max_memory_mb,
            max_checkpoint_mb,
        }) => {
            let change = admin::OrgChange {
                development_runtime: development_runtime.map(|value| value == "on"),
                max_sandboxes: admin::quota_arg("--max-sandboxes", max_sandboxes)?,
                max_cpus: admin::quota_arg("--max-cpus", max_cpus)?,
                max_memory_mb: admin::quota_arg("--max-memory-mb", max_memory_mb)?,
                max_checkpoint_mb: admin::quota_arg("--max-checkpoint-mb", max_checkpoint_mb)?,
            };
            admin::org_settings(settings, &name, change, out).await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command};

    fn worker_disk(args: &[&str]) -> Result<u32, clap::Error> {
        let cli = Cli::try_parse_from(args)?;
        match cli.command {
            Command::Worker {
                sandbox_disk_mb, ..
            }
            | Command::Up {
                sandbox_disk_mb, ..
            } => Ok(sandbox_disk_mb),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn warm_pool(args: &[&str]) -> Result<usize, clap::Error> {
        let cli = Cli::try_parse_from(args)?;
        match cli.command {
            Command::Worker { warm_pool, .. } | Command::Up { warm_pool, .. } => Ok(warm_pool),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn the_warm_pool_is_a_bounded_worker_setting() {
        assert_eq!(
            warm_pool(&["osbd", "worker", "--warm-pool", "0"]).unwrap(),
            0
        );
        assert_eq!(warm_pool(&["osbd", "up", "--warm-pool", "64"]).unwrap(), 64);
        for bad in ["65", "many"] {
            let error = warm_pool(&["osbd", "up", "--warm-pool", bad]).unwrap_err();
            let text = error.to_string();
            assert!(
                text.contains("--warm-pool") && text.contains("0") && text.contains("64"),
                "{bad}: {text}"
            );
        }
        if std::env::var_os(super::WARM_POOL_ENV).is_none() {
            assert_eq!(
                warm_pool(&["osbd", "worker"]).unwrap(),
                super::DEFAULT_WARM_POOL
            );
        }
    }

    #[test]
    fn the_sandbox_disk_size_is_a_bounded_worker_setting() {
        Cli::command().debug_assert();
        assert_eq!(
            worker_disk(&["osbd", "worker", "--sandbox-disk-mb", "64"]).unwrap(),
            64
        );
        assert_eq!(
            worker_disk(&["osbd", "up", "--sandbox-disk-mb", "128"]).unwrap(),
            128
        );
        let too_small = worker_disk(&["osbd", "worker", "--sandbox-disk-mb", "8"]).unwrap_err();
        assert!(
            too_small.to_string().contains("--sandbox-disk-mb"),
            "{too_small}"
        );
        if std::env::var_os(super::SANDBOX_DISK_MB_ENV).is_none() {
            assert_eq!(
                worker_disk(&["osbd", "worker"]).unwrap(),
                osb_vm::config::DEFAULT_SANDBOX_DISK_MB
            );
        }
    }
}
