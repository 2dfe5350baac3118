//! One sandbox's link to the worker, the same for every runtime: a network namespace joined to
//! the host by a veth pair (host side: the gateway address), the per-sandbox nftables table on
//! the host-side veth, and the resolver policy keyed by the sandbox's address. What sits on the
//! namespace side differs ([`LinkShape`]): the netns runtime puts the sandbox address on the veth
//! end itself; the microVM runtime bridges the veth end to a tap and the VM holds the address.
//! Either way the sandbox's packets enter the host on the veth with the sandbox's own source
//! address, so the same rules, resolver and proxy identification apply unchanged. The steps
//! are separate so callers can fail between them; `remove` undoes any prefix of them.

use osb_proto::SandboxId;

use crate::dns::SandboxPolicy;
use crate::error::RuntimeError;
use crate::host::firewall::{self, FirewallPlan};
use crate::host::network::{self, LinkShape};
use crate::host::HostContext;
use crate::pool::SlotAddresses;
use crate::spec::{ProxyEndpoints, ValidatedAllowlist};

/// Creates the namespace and veth (and, for a VM, the bridge and tap).
pub(crate) async fn connect(
    host: &HostContext,
    addresses: &SlotAddresses,
    shape: LinkShape<'_>,
) -> Result<(), RuntimeError> {
    network::create(
        &host.naming.netns(addresses.slot),
        &host.naming.host_veth(addresses.slot),
        addresses,
        shape,
    )
    .await
}

/// Installs the sandbox's fail-closed egress rules.
pub(crate) async fn install_firewall(
    host: &HostContext,
    addresses: &SlotAddresses,
    proxy: ProxyEndpoints,
) -> Result<(), RuntimeError> {
    firewall::install(&FirewallPlan {
        table: &host.naming.nft_table(addresses.slot),
        host_veth: &host.naming.host_veth(addresses.slot),
        addresses: *addresses,
        transparent_port: proxy.transparent_port,
        explicit_port: proxy.explicit_port,
        resolver_port: host.resolver.local_addr().port(),
    })
    .await
}

/// Installs the closed rules of a pooled sandbox: its veth admits nothing until a claim
/// replaces them with [`install_firewall`]'s in one transaction.
pub(crate) async fn install_closed_firewall(
    host: &HostContext,
    addresses: &SlotAddresses,
) -> Result<(), RuntimeError> {
    firewall::install_closed(
        &host.naming.nft_table(addresses.slot),
        &host.naming.host_veth(addresses.slot),
    )
    .await
}

/// Takes the host side of the sandbox's veth down (a pooled sandbox: no packet crosses it
/// whatever its rules) or up again (its claim, once rules and resolver policy are in place).
pub(crate) fn set_host_side_up(
    host: &HostContext,
    addresses: &SlotAddresses,
    up: bool,
) -> Result<(), RuntimeError> {
    network::set_link_up(&host.naming.host_veth(addresses.slot), up)
}

/// Lets the resolver answer the sandbox's allowlisted names.
pub(crate) fn register_dns(
    host: &HostContext,
    addresses: &SlotAddresses,
    sandbox_id: SandboxId,
    allowlist: ValidatedAllowlist,
) {
    host.policies
        .insert(addresses.sandbox, SandboxPolicy::new(sandbox_id, allowlist));
}

/// Removes rules, namespace, veth and resolver policy; each may already be gone.
pub(crate) async fn remove(host: &HostContext, addresses: &SlotAddresses) {
    firewall::remove(&host.naming.nft_table(addresses.slot)).await;
    network::remove(
        &host.naming.netns(addresses.slot),
        &host.naming.host_veth(addresses.slot),
    )
    .await;
    host.policies.remove(addresses.sandbox);
}
