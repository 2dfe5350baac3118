//! Which runtimes a worker may start with and what it advertises (ADR 0025). A worker without
//! an isolating runtime refuses to start unless its operator asked for the development runtime
//! by name; then it advertises `dev`, never `netns`, so placement keeps it away from every org
//! that did not opt in.
//!
//! This module must never let the development runtime stand in for `netns` silently: the
//! refusal names the flag, and the advertisement names the runtime that really runs.

use osb_proto::{RuntimeName, DEV_RUNTIME_ADVERTISED};
use osb_vm::{Isolation, MicroVmConfig, RuntimeKind};

/// The flag of `osbd worker` that allows the development runtime.
pub const DEV_RUNTIME_FLAG: &str = "--dev-runtime";

/// The runtimes a worker is configured for.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Start with the cooperative development runtime when the netns runtime is unavailable
    /// (development only: its sandboxes are plain processes that can bypass the proxy).
    pub allow_development: bool,
    /// Also serve `runtime: "microvm"` with this configuration (refused with a reason when the
    /// host cannot run it).
    pub microvm: Option<MicroVmConfig>,
    /// Size in MiB of each sandbox's disk, the most a sandbox may write on this worker
    /// (`--sandbox-disk-mb`; None: the runtime default, ADR 0207). Also the microVM runtime's
    /// writable disk size.
    pub sandbox_disk_mb: Option<u32>,
    /// Pre-built sandboxes the netns runtime keeps ready (`--warm-pool`; None: the runtime
    /// default, 0; ADR 0208).
    pub warm_pool: Option<usize>,
}

/// Refuses a worker whose netns runtime is unavailable (`unavailable` says why) unless the
/// development runtime was asked for. The error names the command that fixes it.
pub fn refuse_weak_runtime(
    unavailable: Option<&str>,
    allow_development: bool,
) -> Result<(), String> {
    match unavailable {
        Some(reason) if !allow_development => Err(format!(
            "refusing to start: no isolating sandbox runtime (netns is unavailable: {reason}). \
             Run the worker as root with iproute2, nftables, util-linux and e2fsprogs installed; or, for \
             development only, start it with `osbd worker {DEV_RUNTIME_FLAG}` (plain processes, \
             cooperative egress, never for untrusted code)"
        )),
        _ => Ok(()),
    }
}

/// What the worker's heartbeat advertises: `netns` or `dev` for its namespace slot (by the
/// isolation that really runs there), plus `microvm` when that runtime started.
pub fn advertised_runtimes(isolation: Isolation, kinds: &[RuntimeKind]) -> Vec<String> {
    let mut runtimes = vec![match isolation {
        Isolation::Enforced => RuntimeName::Netns.as_str().to_owned(),
        Isolation::DevelopmentCooperative => DEV_RUNTIME_ADVERTISED.to_owned(),
    }];
    if kinds.contains(&RuntimeKind::Microvm) {
        runtimes.push(RuntimeName::Microvm.as_str().to_owned());
    }
    runtimes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_without_netns_refuses_and_names_the_flag() {
        let error = refuse_weak_runtime(Some("the worker does not run as root"), false)
            .expect_err("refused");
        assert!(error.contains("osbd worker --dev-runtime"), "{error}");
        assert!(error.contains("does not run as root"), "{error}");
        assert!(refuse_weak_runtime(Some("no nft"), true).is_ok());
        assert!(refuse_weak_runtime(None, false).is_ok());
    }

    #[test]
    fn a_development_worker_never_advertises_netns() {
        assert_eq!(
            advertised_runtimes(Isolation::DevelopmentCooperative, &[RuntimeKind::Netns]),
            vec!["dev"]
        );
        assert_eq!(
            advertised_runtimes(
                Isolation::Enforced,
                &[RuntimeKind::Netns, RuntimeKind::Microvm]
            ),
            vec!["netns", "microvm"]
        );
    }
}
