//! A sandbox's proxy session: who it is (source address, sandbox id), which sealed tokens it owns
//! with their real values and allowed hosts, and its egress allowlist. Sessions are immutable
//! snapshots; the registry swaps whole snapshots, so a request always sees one consistent
//! version. This module must never print a value or a token.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use osb_proto::{HostPattern, SandboxId, SealedToken};

use crate::scrubber::ScrubTable;
use crate::secret_value::SecretValue;

/// One secret as the registry is told about it.
pub struct SecretSpec {
    /// Env-var name of the secret (safe to log).
    pub name: String,
    /// The sandbox's token for it.
    pub token: SealedToken,
    /// The real value.
    pub value: SecretValue,
    /// Hosts the value may be sent to; empty means "the project allowlist".
    pub allowed_hosts: Vec<HostPattern>,
    /// The secret's version in the control plane's store (0: unversioned). An update applies
    /// only when it is newer (`versions::is_newer`), so a late update never rolls a value back.
    pub version: u64,
}

impl fmt::Debug for SecretSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSpec")
            .field("name", &self.name)
            .field("token", &self.token)
            .field("value", &self.value)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("version", &self.version)
            .finish()
    }
}

/// Everything needed to open a session for one sandbox.
#[derive(Debug)]
pub struct SessionSpec {
    pub sandbox_id: SandboxId,
    /// The address the sandbox's traffic comes from (its veth / VM interface).
    pub source_ip: IpAddr,
    /// The project's egress allowlist (empty = no egress).
    pub egress_allowlist: Vec<HostPattern>,
    pub secrets: Vec<SecretSpec>,
}

/// A secret inside a session snapshot.
#[derive(Debug)]
pub struct SealedSecret {
    pub name: String,
    pub token: SealedToken,
    pub value: SecretValue,
    pub allowed_hosts: Vec<HostPattern>,
    /// The version the value came with; it lives in the snapshot so a restarted control actor
    /// finds it where the data plane keeps it.
    pub version: u64,
}

impl From<SecretSpec> for SealedSecret {
    fn from(spec: SecretSpec) -> Self {
        Self {
            name: spec.name,
            token: spec.token,
            value: spec.value,
            allowed_hosts: spec.allowed_hosts,
            version: spec.version,
        }
    }
}

/// An immutable snapshot of one sandbox's session.
#[derive(Debug)]
pub struct Session {
    pub sandbox_id: SandboxId,
    pub source_ip: IpAddr,
    pub egress_allowlist: Vec<HostPattern>,
    /// Keyed by tokens the control plane minted (`proxy_keys`: no keyed hash needed).
    secrets: HashMap<SealedToken, Arc<SealedSecret>, crate::proxy_keys::ProxyKeys>,
    /// Built on first use and shared by every response of this snapshot.
    scrub_table: OnceLock<Option<ScrubTable>>,
}

impl Session {
    /// Builds a snapshot; secrets keep their `Arc` so an unchanged secret is shared across versions.
    pub fn new(
        sandbox_id: SandboxId,
        source_ip: IpAddr,
        egress_allowlist: Vec<HostPattern>,
        secrets: impl IntoIterator<Item = Arc<SealedSecret>>,
    ) -> Self {
        let secrets = secrets
            .into_iter()
            .map(|secret| (secret.token, secret))
            .collect();
        Self {
            sandbox_id,
            source_ip,
            egress_allowlist,
            secrets,
            scrub_table: OnceLock::new(),
        }
    }

    /// The value → token table for response scrubbing (`None` without secrets).
    pub fn scrub_table(&self) -> Option<&ScrubTable> {
        self.scrub_table
            .get_or_init(|| ScrubTable::for_session(self))
            .as_ref()
    }

    /// The secret a token stands for in this session, if the token belongs to it.
    pub fn secret_for_token(&self, token: &SealedToken) -> Option<&Arc<SealedSecret>> {
        self.secrets.get(token)
    }

    /// The secret with this name.
    pub fn secret_named(&self, name: &str) -> Option<&Arc<SealedSecret>> {
        self.secrets.values().find(|secret| secret.name == name)
    }

    /// All secrets (unordered).
    pub fn secrets(&self) -> impl Iterator<Item = &Arc<SealedSecret>> {
        self.secrets.values()
    }

    /// Whether the session has any secret (scrubbing is skipped otherwise).
    pub fn has_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// Hosts whose certificates are worth pre-minting: exact entries of the allowlist and of every
    /// secret's allowed hosts.
    pub fn exact_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .egress_allowlist
            .iter()
            .chain(
                self.secrets
                    .values()
                    .flat_map(|secret| secret.allowed_hosts.iter()),
            )
            .filter_map(HostPattern::exact_host)
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }
}
