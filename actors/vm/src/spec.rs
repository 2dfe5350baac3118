//! The typed description of one sandbox: which template it boots, what its environment holds
//! (plain user envs and sealed tokens, never secret values), what it may reach, its limits and
//! where the worker proxy listens. Validation happens here, once, so runtimes can trust a spec.
//! This module must never hold a secret value: the orchestration layer seals secrets first and
//! hands over `(NAME, SealedToken)` pairs only.

use std::collections::BTreeMap;

use osb_proto::{CheckpointId, SandboxId, SealedToken};
use serde::{Deserialize, Serialize};

use crate::allowlist::HostPattern;
use crate::error::SpecError;

/// The name of the default template: the host's own `/usr` tree, read-only.
pub const HOST_SYSTEM_TEMPLATE: &str = "host-system";

/// Largest accepted `cpuCount`.
pub const MAX_CPU_COUNT: u32 = 64;
/// Smallest and largest accepted `memoryMB`.
pub const MEMORY_MB_RANGE: (u32, u32) = (32, 256 * 1024);
/// Smallest accepted disk size in MiB (an ext4 file system with its journal and room to work).
pub const MIN_DISK_MB: u32 = 16;

/// One secret as the sandbox sees it: its env-var name and the sealed token standing in for it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedEnv {
    /// The env-var name (also the secret's name in the project).
    pub name: String,
    /// The per-sandbox token the proxy swaps for the real value.
    pub token: SealedToken,
}

impl std::fmt::Debug for SealedEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A token is a capability inside its sandbox: print only its short diagnostic id.
        f.debug_struct("SealedEnv")
            .field("name", &self.name)
            .field("token_id", &self.token.short_id())
            .finish()
    }
}

/// The host ports of the worker proxy's two listeners. The runtime redirects the sandbox's
/// tcp/80 and tcp/443 to `transparent_port` and points `HTTP(S)_PROXY` at `explicit_port`, both
/// on the host side of the sandbox's own link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyEndpoints {
    /// Port of the transparent (SO_ORIGINAL_DST) listener.
    pub transparent_port: u16,
    /// Port of the explicit HTTP proxy listener (CONNECT and absolute-form requests).
    pub explicit_port: u16,
}

/// Which sandbox technology runs a sandbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Network, pid, mount, uts and ipc namespaces on the worker's kernel (the default).
    #[default]
    Netns,
    /// A QEMU `microvm` guest with its own kernel, on a tap inside its own network namespace.
    Microvm,
}

impl RuntimeKind {
    /// The name used in specs, the API and the worker protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Netns => "netns",
            RuntimeKind::Microvm => "microvm",
        }
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        match text {
            "" | "netns" => Ok(RuntimeKind::Netns),
            "microvm" => Ok(RuntimeKind::Microvm),
            other => Err(SpecError::Runtime {
                given: other.chars().take(32).collect(),
            }),
        }
    }
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a sandbox's writable layer starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "value")]
pub enum BootLayer {
    /// An empty writable layer over the template (a fresh sandbox).
    Fresh,
    /// A copy of a checkpoint's writable layer (fork).
    Checkpoint(CheckpointId),
    /// A copy of a named golden snapshot's writable layer.
    Snapshot(String),
}

/// Everything a runtime needs to create one sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxSpec {
    /// The sandbox's id, chosen by the caller.
    pub id: SandboxId,
    /// A registered template name (`host-system` unless another was registered).
    pub template: String,
    /// What the writable layer starts from.
    pub boot_from: BootLayer,
    /// Plain user envs; they win over everything else on a name clash.
    pub user_envs: BTreeMap<String, String>,
    /// Secret names with their sealed tokens.
    pub sealed_envs: Vec<SealedEnv>,
    /// Host patterns the sandbox may resolve and reach (`host`, `*.suffix`, optional `:port`).
    /// Empty means no egress at all.
    pub egress_allowlist: Vec<String>,
    /// CPU limit in whole CPUs.
    pub cpu_count: u32,
    /// Memory limit in MiB.
    #[serde(rename = "memoryMB")]
    pub memory_mb: u32,
    /// The proxy's listener ports on the worker.
    pub proxy: ProxyEndpoints,
    /// The proxy CA certificate (PEM, public) to install in the sandbox trust store.
    pub ca_pem: String,
    /// Which runtime runs it (`netns` unless asked otherwise).
    #[serde(default)]
    pub runtime: RuntimeKind,
    /// Size of the sandbox's writable disk in MiB (None: the worker's `--sandbox-disk-mb`, which
    /// is also the most a spec may ask for; ADR 0207).
    #[serde(default, rename = "diskMB")]
    pub disk_mb: Option<u32>,
}

impl SandboxSpec {
    /// A spec with defaults (host-system template, 1 CPU, 512 MiB, no envs, no egress).
    pub fn new(id: SandboxId, proxy: ProxyEndpoints, ca_pem: impl Into<String>) -> Self {
        Self {
            id,
            template: HOST_SYSTEM_TEMPLATE.to_owned(),
            boot_from: BootLayer::Fresh,
            user_envs: BTreeMap::new(),
            sealed_envs: Vec::new(),
            egress_allowlist: Vec::new(),
            cpu_count: 1,
            memory_mb: 512,
            proxy,
            ca_pem: ca_pem.into(),
            runtime: RuntimeKind::Netns,
            disk_mb: None,
        }
    }

    /// The disk size this spec gets on a worker whose maximum (and default) is `worker_max_mb`,
    /// or a refusal naming the range.
    pub fn disk_mb_within(&self, worker_max_mb: u32) -> Result<u32, SpecError> {
        match self.disk_mb {
            None => Ok(worker_max_mb),
            Some(given) if (MIN_DISK_MB..=worker_max_mb).contains(&given) => Ok(given),
            Some(given) => Err(SpecError::DiskMb {
                given,
                min: MIN_DISK_MB,
                max: worker_max_mb,
            }),
        }
    }

    /// Checks every field; a runtime calls this before touching the system.
    pub fn validate(&self) -> Result<ValidatedAllowlist, SpecError> {
        for (name, value) in &self.user_envs {
            validate_env_name(name)?;
            if value.contains('\0') {
                return Err(SpecError::EnvValueHasNul { name: name.clone() });
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for sealed in &self.sealed_envs {
            validate_env_name(&sealed.name)?;
            if !seen.insert(sealed.name.as_str()) {
                return Err(SpecError::DuplicateSecret {
                    name: sealed.name.clone(),
                });
            }
        }
        if self.cpu_count == 0 || self.cpu_count > MAX_CPU_COUNT {
            return Err(SpecError::CpuCount {
                given: self.cpu_count,
            });
        }
        if self.memory_mb < MEMORY_MB_RANGE.0 || self.memory_mb > MEMORY_MB_RANGE.1 {
            return Err(SpecError::MemoryMb {
                given: self.memory_mb,
            });
        }
        if self.proxy.transparent_port == 0 || self.proxy.explicit_port == 0 {
            return Err(SpecError::ProxyPort);
        }
        if !self.ca_pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(SpecError::CaPem);
        }
        let patterns = self
            .egress_allowlist
            .iter()
            .map(|text| HostPattern::parse(text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ValidatedAllowlist(patterns))
    }
}

impl SandboxSpec {
    /// Refuses a spec meant for another runtime: a sandbox never silently gets weaker (or
    /// different) isolation than it asked for.
    pub fn require_runtime(&self, runtime: RuntimeKind) -> Result<(), crate::error::RuntimeError> {
        if self.runtime == runtime {
            Ok(())
        } else {
            Err(crate::error::RuntimeError::RuntimeUnavailable {
                kind: self.runtime.to_string(),
                reason: format!("the runtime asked to create it is {runtime}"),
            })
        }
    }
}

/// The allowlist after validation, ready for DNS policy decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidatedAllowlist(pub Vec<HostPattern>);

impl ValidatedAllowlist {
    /// Whether a DNS name may be resolved by the sandbox.
    pub fn allows_name(&self, name: &str) -> bool {
        self.0.iter().any(|pattern| pattern.matches_name(name))
    }
}

/// Env-var names are `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters.
pub fn validate_env_name(name: &str) -> Result<(), SpecError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_');
    let rest_ok = chars.all(|other| other.is_ascii_alphanumeric() || other == '_');
    if first_ok && rest_ok && name.len() <= 128 {
        Ok(())
    } else {
        Err(SpecError::EnvName {
            name: name.chars().take(64).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn spec() -> SandboxSpec {
        SandboxSpec::new(
            SandboxId::new(),
            ProxyEndpoints {
                transparent_port: 1,
                explicit_port: 2,
            },
            PEM,
        )
    }

    #[test]
    fn defaults_are_valid() {
        assert!(spec().validate().is_ok());
    }

    #[test]
    fn bad_env_names_are_refused() {
        for bad in ["", "1A", "A-B", "A B", "é"] {
            let mut candidate = spec();
            candidate.user_envs.insert(bad.to_owned(), "v".to_owned());
            assert!(matches!(
                candidate.validate(),
                Err(SpecError::EnvName { .. })
            ));
        }
    }

    #[test]
    fn duplicate_secret_names_are_refused() {
        let mut candidate = spec();
        let token = SealedToken::from_random_bytes([1; 16]);
        candidate.sealed_envs = vec![
            SealedEnv {
                name: "A".into(),
                token,
            },
            SealedEnv {
                name: "A".into(),
                token,
            },
        ];
        assert!(matches!(
            candidate.validate(),
            Err(SpecError::DuplicateSecret { .. })
        ));
    }

    #[test]
    fn limits_and_ca_are_checked() {
        let mut candidate = spec();
        candidate.cpu_count = 0;
        assert!(matches!(
            candidate.validate(),
            Err(SpecError::CpuCount { .. })
        ));
        let mut candidate = spec();
        candidate.memory_mb = 1;
        assert!(matches!(
            candidate.validate(),
            Err(SpecError::MemoryMb { .. })
        ));
        let mut candidate = spec();
        candidate.ca_pem = "nope".into();
        assert!(matches!(candidate.validate(), Err(SpecError::CaPem)));
    }

    #[test]
    fn disk_size_defaults_to_the_worker_maximum_and_stays_within_it() {
        let mut candidate = spec();
        assert_eq!(candidate.disk_mb_within(4096), Ok(4096));
        candidate.disk_mb = Some(64);
        assert_eq!(candidate.disk_mb_within(4096), Ok(64));
        for refused in [MIN_DISK_MB - 1, 4097] {
            candidate.disk_mb = Some(refused);
            let error = candidate.disk_mb_within(4096).unwrap_err();
            assert!(error.to_string().contains("--sandbox-disk-mb"), "{error}");
        }
    }

    #[test]
    fn debug_shows_only_the_token_short_id() {
        let token = SealedToken::from_random_bytes([0xab; 16]);
        let sealed = SealedEnv {
            name: "API_KEY".into(),
            token,
        };
        let printed = format!("{sealed:?}");
        assert!(printed.contains("API_KEY"));
        assert!(!printed.contains(token.as_str()));
    }

    #[test]
    fn json_uses_camel_case_contract_names() {
        let json = serde_json::to_value(spec()).unwrap();
        assert!(json.get("memoryMB").is_some());
        assert!(json.get("cpuCount").is_some());
        assert!(json.get("egressAllowlist").is_some());
        assert_eq!(json["runtime"], "netns");
    }

    #[test]
    fn runtime_names_parse_and_default_to_netns() {
        assert_eq!("".parse::<RuntimeKind>().unwrap(), RuntimeKind::Netns);
        assert_eq!(
            "microvm".parse::<RuntimeKind>().unwrap(),
            RuntimeKind::Microvm
        );
        assert!(matches!(
            "firecracker".parse::<RuntimeKind>(),
            Err(SpecError::Runtime { .. })
        ));
        let mut json = serde_json::to_value(spec()).unwrap();
        json.as_object_mut().unwrap().remove("runtime");
        let parsed: SandboxSpec = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.runtime, RuntimeKind::Netns);
    }
}
