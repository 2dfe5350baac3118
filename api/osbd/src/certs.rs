//! `osbd certs init|issue`: the operator's gRPC PKI. `init` creates a CA and a control-plane
//! certificate; `issue` signs a control-plane or worker certificate with that CA. Both print the
//! files they wrote and the environment lines to use them; neither ever prints a key or
//! overwrites a file without `--force`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};

use super::context::CommandError;
use osb_grpc::pki::{self, PkiError};
use osb_grpc::{PeerIdentity, PeerRole, TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV};

/// `osbd certs …`
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create a gRPC certificate authority and a control-plane certificate in --out
    Init {
        /// Directory to write into (created mode 0700 if missing)
        #[arg(long)]
        out: PathBuf,
        /// Name of the control-plane identity (`control:<name>`)
        #[arg(long, default_value = "main")]
        control_name: String,
        /// Replace existing files (every certificate issued by the old CA stops working)
        #[arg(long)]
        force: bool,
    },
    /// Issue a control-plane or worker certificate signed by the CA in --ca-dir
    Issue {
        /// Directory holding ca.pem and ca-key.pem (from `osbd certs init`)
        #[arg(long)]
        ca_dir: PathBuf,
        /// What the certificate's holder is
        #[arg(long, value_enum)]
        role: CertRole,
        /// Identity name (a worker's name as placement knows it): a-z, 0-9, `-`, `.`
        #[arg(long)]
        name: String,
        /// Directory to write the certificate and key into
        #[arg(long)]
        out: PathBuf,
        /// Extra DNS name or IP address for the certificate (repeatable; informational)
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Replace an existing certificate and key of the same identity
        #[arg(long)]
        force: bool,
    },
}

/// Role argument of `osbd certs issue`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CertRole {
    Control,
    Worker,
}

impl From<CertRole> for PeerRole {
    fn from(role: CertRole) -> Self {
        match role {
            CertRole::Control => PeerRole::Control,
            CertRole::Worker => PeerRole::Worker,
        }
    }
}

pub(crate) fn run(command: CertsCommand, out: &mut dyn Write) -> Result<(), CommandError> {
    match command {
        CertsCommand::Init {
            out: dir,
            control_name,
            force,
        } => {
            let created = pki::init(&dir, &control_name, force).map_err(command_error)?;
            writeln!(
                out,
                "created {} (CA certificate: copy it to every control plane and worker)",
                shown(&created.ca_cert)
            )?;
            writeln!(
                out,
                "created {} (CA key, mode 0600: keep it offline; only `osbd certs issue` needs it)",
                shown(&created.ca_key)
            )?;
            print_identity(out, &created.ca_cert, &created.control, "control plane")?;
            writeln!(
                out,
                "next: osbd certs issue --ca-dir {} --role worker --name <worker> --out <dir>",
                shown(&dir)
            )?;
        }
        CertsCommand::Issue {
            ca_dir,
            role,
            name,
            out: dir,
            hosts,
            force,
        } => {
            let identity = PeerIdentity::new(role.into(), &name)
                .map_err(|error| CommandError::Usage(error.to_string()))?;
            let created =
                pki::issue(&ca_dir, &identity, &hosts, &dir, force).map_err(command_error)?;
            let holder = match identity.role() {
                PeerRole::Control => "control plane",
                PeerRole::Worker => "worker",
            };
            print_identity(out, &ca_dir.join(pki::CA_CERT_FILE), &created, holder)?;
        }
    }
    Ok(())
}

fn print_identity(
    out: &mut dyn Write,
    ca_cert: &Path,
    created: &pki::CertPaths,
    holder: &str,
) -> Result<(), CommandError> {
    writeln!(out, "created {}", shown(&created.cert))?;
    writeln!(out, "created {} (mode 0600)", shown(&created.key))?;
    writeln!(out, "# environment of the {holder}:")?;
    writeln!(out, "export {TLS_CA_ENV}={}", shown(ca_cert))?;
    writeln!(out, "export {TLS_CERT_ENV}={}", shown(&created.cert))?;
    writeln!(out, "export {TLS_KEY_ENV}={}", shown(&created.key))?;
    Ok(())
}

fn shown(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

fn command_error(error: PkiError) -> CommandError {
    match error {
        PkiError::Exists { .. }
        | PkiError::BadCa { .. }
        | PkiError::BadHost { .. }
        | PkiError::Identity(_) => CommandError::Usage(error.to_string()),
        other => CommandError::Failed(other.to_string()),
    }
}
