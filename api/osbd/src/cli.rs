//! Argument parsing (clap) and dispatch.

use std::io::Write;

use clap::{Parser, Subcommand};

use super::certs::CertsCommand;
use super::context::CommandError;
use super::{admin, certs, gateway, init, keys, migrate, roles, up};
use crate::settings::Settings;

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
    },
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
        } => {
            up::run(
                settings,
                up::UpArgs {
                    listen,
                    prefix,
                    pool,
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
        } => {
            let args = roles::WorkerArgs {
                listen,
                advertise,
                prefix,
                pool,
                data_dir,
            };
            roles::worker(settings, args, out, err).await
        }
        Command::Admin(AdminCommand::CreateOrg { name }) => {
            admin::create_org(settings, &name, out, err).await
        }
        Command::Admin(AdminCommand::CreateKey { org, name }) => {
            admin::create_key(settings, &org, &name, out, err).await
        }
    }
}
