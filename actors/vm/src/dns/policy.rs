//! Which sandbox a DNS query comes from and what it may resolve: a table from sandbox address to
//! allowlist, updated by the runtime at create/destroy, read by the resolver. `decide` is the pure
//! core of the resolver. This module must never hold secret names or values: only host patterns.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use osb_proto::SandboxId;

use crate::dns::dedupe::ReportBudget;
use crate::dns::wire::{Query, CLASS_IN, TYPE_A};
use crate::spec::ValidatedAllowlist;

/// The resolver's view of one sandbox.
#[derive(Debug, Clone)]
pub struct SandboxPolicy {
    /// The sandbox.
    pub sandbox_id: SandboxId,
    /// Names it may resolve.
    pub allowlist: ValidatedAllowlist,
    /// Its own budget of `egress_blocked` reports (shared by clones, lives as long as the
    /// sandbox's entry).
    pub report_budget: Arc<ReportBudget>,
}

impl SandboxPolicy {
    /// A policy with a fresh report budget.
    pub fn new(sandbox_id: SandboxId, allowlist: ValidatedAllowlist) -> Self {
        Self {
            sandbox_id,
            allowlist,
            report_budget: Arc::default(),
        }
    }
}

/// Sandbox address → policy.
#[derive(Debug, Default)]
pub struct PolicyTable {
    by_source: RwLock<HashMap<Ipv4Addr, SandboxPolicy>>,
}

impl PolicyTable {
    /// Registers (or replaces) the policy of the sandbox at `address`. A replacement for the
    /// same sandbox (a new allowlist) keeps the report budget it has spent.
    pub fn insert(&self, address: Ipv4Addr, mut policy: SandboxPolicy) {
        if let Ok(mut table) = self.by_source.write() {
            if let Some(previous) = table.get(&address) {
                if previous.sandbox_id == policy.sandbox_id {
                    policy.report_budget = previous.report_budget.clone();
                }
            }
            table.insert(address, policy);
        }
    }

    /// Forgets the sandbox at `address`.
    pub fn remove(&self, address: Ipv4Addr) {
        if let Ok(mut table) = self.by_source.write() {
            table.remove(&address);
        }
    }

    /// The policy of the sandbox at `address`, if any.
    pub fn get(&self, address: Ipv4Addr) -> Option<SandboxPolicy> {
        self.by_source.read().ok()?.get(&address).cloned()
    }
}

/// What the resolver answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The name is allowed: answer this A record (or nothing for non-A types).
    Allowed(Option<Ipv4Addr>),
    /// The name is not allowed: NXDOMAIN, and report it.
    Blocked,
    /// The source is no sandbox of this worker: REFUSED.
    UnknownSource,
}

/// Decides the answer for `query` from a sandbox with `policy`.
pub fn decide(policy: Option<&SandboxPolicy>, query: &Query, answer: Ipv4Addr) -> Decision {
    let Some(policy) = policy else {
        return Decision::UnknownSource;
    };
    if query.qclass != CLASS_IN || !policy.allowlist.allows_name(&query.name) {
        return Decision::Blocked;
    }
    if query.qtype == TYPE_A {
        Decision::Allowed(Some(answer))
    } else {
        // AAAA and others: the name exists but has no such record, so clients use IPv4.
        Decision::Allowed(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowlist::HostPattern;
    use crate::dns::wire::{encode_query, parse_query};

    fn policy() -> SandboxPolicy {
        SandboxPolicy::new(
            SandboxId::new(),
            ValidatedAllowlist(vec![
                HostPattern::parse("api.example.com").unwrap(),
                HostPattern::parse("*.pypi.org").unwrap(),
            ]),
        )
    }

    fn query(name: &str, qtype: u16) -> Query {
        parse_query(&encode_query(1, name, qtype)).unwrap()
    }

    #[test]
    fn allowed_names_get_the_redirect_address() {
        let answer = Ipv4Addr::new(100, 96, 0, 1);
        let policy = policy();
        assert_eq!(
            decide(Some(&policy), &query("api.example.com", TYPE_A), answer),
            Decision::Allowed(Some(answer))
        );
        assert_eq!(
            decide(Some(&policy), &query("files.pypi.org", 28), answer),
            Decision::Allowed(None)
        );
    }

    #[test]
    fn other_names_and_strangers_are_refused() {
        let answer = Ipv4Addr::new(100, 96, 0, 1);
        let policy = policy();
        assert_eq!(
            decide(Some(&policy), &query("evil.example", TYPE_A), answer),
            Decision::Blocked
        );
        assert_eq!(
            decide(Some(&policy), &query("pypi.org", TYPE_A), answer),
            Decision::Blocked
        );
        assert_eq!(
            decide(None, &query("api.example.com", TYPE_A), answer),
            Decision::UnknownSource
        );
        let empty = SandboxPolicy::new(SandboxId::new(), ValidatedAllowlist::default());
        assert_eq!(
            decide(Some(&empty), &query("api.example.com", TYPE_A), answer),
            Decision::Blocked
        );
    }

    #[test]
    fn table_tracks_sandboxes_by_address() {
        let table = PolicyTable::default();
        let address = Ipv4Addr::new(100, 96, 0, 6);
        table.insert(address, policy());
        assert!(table.get(address).is_some());
        table.remove(address);
        assert!(table.get(address).is_none());
    }
}
