//! `oc`'s arguments: the clap types and nothing else. Parsing turns argv into a typed command;
//! input that cannot be right (a malformed `--env`, a missing `--`) is refused here with exit 2
//! before anything is sent. No argument may carry a secret value or an API key: those come from
//! stdin, the environment or the config file.

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;

use super::envs::{parse_env_pair, EnvPair};

/// OpenSandbox CLI.
#[derive(Debug, Parser)]
#[command(
    name = "oc",
    version,
    about = "OpenSandbox CLI: projects, secrets, sandboxes, checkpoints and events",
    long_about = "OpenSandbox CLI. Connects to OPENSANDBOX_API_URL (or --api-url, or api_url in \
~/.config/opensandbox/config.toml, default http://127.0.0.1:8080) with the key in \
OPENSANDBOX_API_KEY or api_key in the config file. Exit codes: 0 ok, 1 failure, 2 bad usage or \
input, 3 missing or wrong API key, 4 not found, 5 conflict; `oc exec` exits with the command's code."
)]
pub struct OcCli {
    /// Print the API's JSON instead of tables
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// API base URL (overrides OPENSANDBOX_API_URL and the config file)
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) api_url: Option<String>,
    #[command(subcommand)]
    pub(crate) command: OcCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum OcCommand {
    /// Manage projects
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Manage a project's secrets (values from stdin or a hidden prompt, never from arguments)
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Create a sandbox in a project and print its id
    Create(CreateArgs),
    /// List, inspect and kill sandboxes
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Run a command in a sandbox; prints its output and exits with its exit code
    Exec(ExecArgs),
    /// Checkpoint a sandbox, list or delete its checkpoints
    #[command(subcommand)]
    Checkpoint(CheckpointCommand),
    /// Restore a sandbox in place from one of its checkpoints (same tokens, current values)
    Restore {
        /// The sandbox id (sbx_…)
        sandbox: String,
        /// The checkpoint id (chk_…)
        checkpoint: String,
    },
    /// Start a new sandbox from a checkpoint (fresh sealed tokens) and print its id
    Fork(ForkArgs),
    /// Register, list or delete golden snapshots
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Print your org's events, one `subject  json` line each
    Events(EventsArgs),
    /// Print a shell completion script (e.g. `oc completions bash > /etc/bash_completion.d/oc`)
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: Shell,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ProjectFields {
    /// Allowed egress host pattern (repeatable): host, *.suffix, optional :port
    #[arg(long = "allow")]
    pub(crate) allow: Vec<String>,
    /// CPUs per sandbox
    #[arg(long)]
    pub(crate) cpu: Option<u32>,
    /// Memory per sandbox in MiB
    #[arg(long)]
    pub(crate) memory_mb: Option<u32>,
    /// Sandbox timeout in seconds
    #[arg(long)]
    pub(crate) timeout_sec: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectCommand {
    /// Create a project
    Create {
        name: String,
        #[command(flatten)]
        fields: ProjectFields,
    },
    /// List projects
    List,
    /// Show one project (by name or id)
    Get { project: String },
    /// Change a project; --allow replaces the allowlist, --clear-allowlist empties it
    Update {
        project: String,
        #[command(flatten)]
        fields: ProjectFields,
        #[arg(long, conflicts_with = "allow")]
        clear_allowlist: bool,
    },
    /// Delete a project and its secrets
    Delete { project: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// Set a secret; the value comes from stdin (`printf %s "$KEY" | oc secret set web API_KEY`)
    /// or, on a terminal, from a hidden prompt — never from an argument
    Set {
        project: String,
        name: String,
        /// Host the secret may be sent to (repeatable); default: the project's allowlist
        #[arg(long = "allowed-host")]
        allowed_hosts: Vec<String>,
    },
    /// List a project's secrets (names, hosts, versions; never values)
    List { project: String },
    /// Delete a secret
    Delete { project: String, name: String },
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The project (name or id) whose secrets and limits the sandbox gets
    #[arg(long)]
    pub(crate) project: String,
    /// Template (image) to boot; default: the project's
    #[arg(long)]
    pub(crate) template: Option<String>,
    /// Boot from this golden snapshot (see `oc snapshot list`)
    #[arg(long, value_name = "NAME")]
    pub(crate) snapshot: Option<String>,
    /// Plain environment variable NAME=VALUE (repeatable); not a secret: use `oc secret set`
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env_pair)]
    pub(crate) envs: Vec<EnvPair>,
    /// CPUs; default: the project's
    #[arg(long)]
    pub(crate) cpu: Option<u32>,
    /// Memory in MiB; default: the project's
    #[arg(long)]
    pub(crate) memory_mb: Option<u32>,
    /// Lifetime in seconds; default: the project's
    #[arg(long)]
    pub(crate) timeout_sec: Option<u32>,
    /// Send this Idempotency-Key: repeating the command with the same key returns the same
    /// sandbox instead of creating a second one
    #[arg(long, value_name = "KEY")]
    pub(crate) idempotency_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SandboxCommand {
    /// List your sandboxes, newest first
    List,
    /// Show one sandbox
    Get { sandbox: String },
    /// Destroy a sandbox
    Kill { sandbox: String },
    /// Show where a sandbox may connect and which secret may go where
    AllowedHosts { sandbox: String },
}

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// The sandbox id (sbx_…)
    pub(crate) sandbox: String,
    /// Extra environment variable NAME=VALUE for this command (repeatable)
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env_pair)]
    pub(crate) envs: Vec<EnvPair>,
    /// Working directory inside the sandbox
    #[arg(long, value_name = "DIR")]
    pub(crate) cwd: Option<String>,
    /// Kill the command after this many seconds
    #[arg(long)]
    pub(crate) timeout_sec: Option<u32>,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) cmd: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CheckpointCommand {
    /// Checkpoint a running sandbox and print the checkpoint id
    Create { sandbox: String },
    /// List a sandbox's checkpoints
    List { sandbox: String },
    /// Delete a checkpoint and its files on the worker
    Delete {
        /// The sandbox id (sbx_…)
        sandbox: String,
        /// The checkpoint id (chk_…)
        checkpoint: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ForkArgs {
    /// The checkpoint id (chk_…)
    pub(crate) checkpoint: String,
    /// The project of the new sandbox; default: the parent's
    #[arg(long)]
    pub(crate) project: Option<String>,
    /// Plain environment variable NAME=VALUE for the new sandbox (repeatable)
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env_pair)]
    pub(crate) envs: Vec<EnvPair>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SnapshotCommand {
    /// Checkpoint a sandbox and register it as a golden snapshot named NAME
    Create {
        name: String,
        /// The sandbox to snapshot (sbx_…)
        #[arg(long)]
        sandbox: String,
    },
    /// List golden snapshots
    List,
    /// Delete a golden snapshot and the checkpoint behind it
    Delete { name: String },
}

#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Keep printing events until interrupted (default: print what arrives within about a second)
    #[arg(long, short)]
    pub(crate) follow: bool,
    /// Only subjects matching this pattern (e.g. `osb.sandbox.*.created`, `osb.sandbox.>`)
    #[arg(long, value_name = "PATTERN")]
    pub(crate) subject: Option<String>,
}
