//! The sandbox's link: a network namespace joined to the host by a veth pair with a /30 from the
//! pool. In the [`LinkShape::Address`] shape (netns runtime) the namespace side is `eth0` with the
//! sandbox address and a default route to the host side; in the [`LinkShape::BridgeToTap`] shape
//! (microVM runtime) `eth0` carries no address and is bridged to a tap the VM attaches to, so the
//! VM holds the sandbox address and its frames reach the host veth unchanged. The `ip` commands
//! are planned by pure functions (unit-tested) and applied in two `ip -batch` runs. IPv6 is
//! switched off on the host side; the firewall drops any that remains. This module must never
//! decide what traffic may pass: that is `firewall`'s job.

use crate::error::RuntimeError;
use crate::pool::SlotAddresses;
use crate::system::run_tool;

/// Name of the sandbox-side interface inside its namespace.
pub const SANDBOX_INTERFACE: &str = "eth0";
/// Name of the bridge inside a microVM's namespace.
pub const BRIDGE_INTERFACE: &str = "br0";

/// What the namespace side of the link looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkShape<'a> {
    /// `eth0` holds the sandbox address (processes in the namespace are the sandbox).
    Address,
    /// `eth0` and the named tap are bridged, without addresses; the VM on the tap holds the
    /// sandbox address.
    BridgeToTap {
        /// The tap device QEMU attaches to.
        tap: &'a str,
        /// The uid (and gid) allowed to attach to it without privileges; None: root only.
        owner: Option<u32>,
    },
}

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

/// The in-namespace `ip -batch` script for `shape`.
pub fn sandbox_batch(addresses: &SlotAddresses, shape: LinkShape<'_>) -> String {
    match shape {
        LinkShape::Address => format!(
            "link set lo up\n\
             addr add {sandbox}/30 dev {SANDBOX_INTERFACE}\n\
             link set {SANDBOX_INTERFACE} up\n\
             route add default via {gateway}\n",
            sandbox = addresses.sandbox,
            gateway = addresses.gateway,
        ),
        LinkShape::BridgeToTap { tap, owner } => format!(
            "link set lo up\n\
             link add {BRIDGE_INTERFACE} type bridge\n\
             tuntap add dev {tap} mode tap{owner}\n\
             link set {SANDBOX_INTERFACE} master {BRIDGE_INTERFACE}\n\
             link set {tap} master {BRIDGE_INTERFACE}\n\
             link set {SANDBOX_INTERFACE} up\n\
             link set {tap} up\n\
             link set {BRIDGE_INTERFACE} up\n",
            owner = owner
                .map(|uid| format!(" user {uid} group {uid}"))
                .unwrap_or_default(),
        ),
    }
}

/// Creates the namespace and link.
pub async fn create(
    netns: &str,
    host_veth: &str,
    addresses: &SlotAddresses,
    shape: LinkShape<'_>,
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
        Some(&sandbox_batch(addresses, shape)),
    )
    .await
}

/// Sets an interface's administrative state through `/sys/class/net/<name>/flags` (IFF_UP), a
/// file write instead of an `ip` process: a warm-pool claim opens its link this way.
pub fn set_link_up(interface: &str, up: bool) -> Result<(), RuntimeError> {
    const IFF_UP: u32 = 0x1;
    let path = std::path::Path::new("/sys/class/net")
        .join(interface)
        .join("flags");
    let io = |error| RuntimeError::io(format!("setting the state of {interface}"), error);
    let text = std::fs::read_to_string(&path).map_err(io)?;
    let flags = u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).map_err(|_| {
        RuntimeError::Setup {
            step: "setting a link's state",
            detail: format!("{} holds {text:?}, not hex flags", path.display()),
        }
    })?;
    let wanted = if up { flags | IFF_UP } else { flags & !IFF_UP };
    std::fs::write(&path, format!("{wanted:#x}")).map_err(io)
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
        let inner = sandbox_batch(&addresses, LinkShape::Address);
        assert!(inner.contains("addr add 100.96.0.14/30 dev eth0"));
        assert!(inner.contains("route add default via 100.96.0.13"));
    }

    #[test]
    fn a_vm_link_bridges_the_veth_end_to_the_tap_without_addresses() {
        let addresses = SlotAddresses {
            slot: 3,
            gateway: Ipv4Addr::new(100, 82, 0, 13),
            sandbox: Ipv4Addr::new(100, 82, 0, 14),
        };
        let inner = sandbox_batch(
            &addresses,
            LinkShape::BridgeToTap {
                tap: "tap0",
                owner: Some(1_879_048_195),
            },
        );
        assert!(inner.contains("tuntap add dev tap0 mode tap user 1879048195 group 1879048195\n"));
        assert!(inner.contains("link set eth0 master br0\n"));
        assert!(inner.contains("link set tap0 master br0\n"));
        // The namespace holds no address and no route: only the VM speaks IP on this link.
        assert!(!inner.contains("addr add"));
        assert!(!inner.contains("route"));
    }
}
