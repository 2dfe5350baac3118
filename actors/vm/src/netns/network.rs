//! The sandbox's link: a network namespace joined to the host by a veth pair with a /30 from the
//! pool, the sandbox side named `eth0` with a default route to the host side. The `ip` commands
//! are planned by pure functions (unit-tested) and applied in two `ip -batch` runs. IPv6 is
//! switched off on the host side; the firewall drops any that remains. This module must never
//! decide what traffic may pass: that is `firewall`'s job.

use crate::error::RuntimeError;
use crate::pool::SlotAddresses;
use crate::system::run_tool;

/// Name of the sandbox-side interface inside its namespace.
pub const SANDBOX_INTERFACE: &str = "eth0";

/// The host-side `ip -batch` script: namespace, veth pair, host address.
pub fn host_batch(netns: &str, host_veth: &str, addresses: &SlotAddresses) -> String {
    format!(
        "netns add {netns}\n\
         link add {host_veth} type veth peer name {SANDBOX_INTERFACE} netns {netns}\n\
         addr add {gateway}/30 dev {host_veth}\n\
         link set {host_veth} up\n",
        gateway = addresses.gateway,
    )
}

/// The in-namespace `ip -batch` script: loopback, sandbox address, default route.
pub fn sandbox_batch(addresses: &SlotAddresses) -> String {
    format!(
        "link set lo up\n\
         addr add {sandbox}/30 dev {SANDBOX_INTERFACE}\n\
         link set {SANDBOX_INTERFACE} up\n\
         route add default via {gateway}\n",
        sandbox = addresses.sandbox,
        gateway = addresses.gateway,
    )
}

/// Creates the namespace and link.
pub async fn create(
    netns: &str,
    host_veth: &str,
    addresses: &SlotAddresses,
) -> Result<(), RuntimeError> {
    run_tool(
        "creating the sandbox network namespace and veth pair",
        "ip",
        &["-batch", "-"],
        Some(&host_batch(netns, host_veth, addresses)),
    )
    .await?;
    // No IPv6 on the host side of the link: the sandbox has nowhere to send it.
    let sysctl = format!("/proc/sys/net/ipv6/conf/{host_veth}/disable_ipv6");
    if std::path::Path::new(&sysctl).exists() {
        std::fs::write(&sysctl, "1")
            .map_err(|e| RuntimeError::io(format!("disabling IPv6 on {host_veth}"), e))?;
    }
    run_tool(
        "configuring the sandbox side of the link",
        "ip",
        &["-netns", netns, "-batch", "-"],
        Some(&sandbox_batch(addresses)),
    )
    .await
}

/// Removes the namespace and the host veth (either name may be empty to skip it); both may
/// already be gone.
pub async fn remove(netns: &str, host_veth: &str) {
    if !netns.is_empty() && std::path::Path::new("/run/netns").join(netns).exists() {
        if let Err(error) = run_tool(
            "removing a network namespace",
            "ip",
            &["netns", "del", netns],
            None,
        )
        .await
        {
            tracing::warn!(netns, error = %error, "network namespace removal failed");
        }
    }
    if !host_veth.is_empty()
        && std::path::Path::new("/sys/class/net")
            .join(host_veth)
            .exists()
    {
        // The veth dies with its namespace; delete it explicitly in case something still holds
        // the namespace open.
        let _ = run_tool("removing a veth", "ip", &["link", "del", host_veth], None).await;
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn batches_name_the_right_addresses() {
        let addresses = SlotAddresses {
            slot: 3,
            gateway: Ipv4Addr::new(100, 96, 0, 13),
            sandbox: Ipv4Addr::new(100, 96, 0, 14),
        };
        let host = host_batch("osb-n3", "osbh3", &addresses);
        assert!(host.contains("netns add osb-n3\n"));
        assert!(host.contains("peer name eth0 netns osb-n3"));
        assert!(host.contains("addr add 100.96.0.13/30 dev osbh3"));
        let inner = sandbox_batch(&addresses);
        assert!(inner.contains("addr add 100.96.0.14/30 dev eth0"));
        assert!(inner.contains("route add default via 100.96.0.13"));
    }
}
