//! Per-sandbox nftables rules, fail closed (DESIGN §6 rule 3). One `inet` table per sandbox,
//! created at boot and deleted at destroy, matching on the host-side veth:
//! * prerouting (nat): tcp/80 and tcp/443 → the proxy's transparent port on the gateway; udp/53
//!   to the gateway → the worker resolver's port;
//! * input: only packets from the sandbox's own address (no spoofing another sandbox's
//!   identity), only IPv4, only to the proxy ports and the resolver on the gateway; all else
//!   dropped (host services, other ports, UDP/QUIC, ICMP);
//! * forward: nothing from or to the sandbox is routed anywhere.
//!
//! Every packet the host receives passes the base chains of *every* sandbox's table, so each
//! chain starts with one guard that leaves at once for packets of other links (`return` in a
//! base chain is its policy, accept, which lets the next table decide; a drop stays final):
//! one comparison per sandbox per packet instead of the whole chain (issue 17's density bench).
//!
//! Rules are text from a pure function (unit-tested) applied atomically with `nft -f -`. This
//! module must never open a hole for convenience: anything not listed here is dropped.

use crate::error::RuntimeError;
use crate::pool::SlotAddresses;
use crate::system::{run_tool, run_tool_output};

/// What the rules of one sandbox need.
#[derive(Debug, Clone)]
pub struct FirewallPlan<'a> {
    /// Table name (family inet).
    pub table: &'a str,
    /// Host-side veth.
    pub host_veth: &'a str,
    /// The sandbox link addresses.
    pub addresses: SlotAddresses,
    /// Proxy transparent listener port.
    pub transparent_port: u16,
    /// Proxy explicit listener port.
    pub explicit_port: u16,
    /// Worker resolver port.
    pub resolver_port: u16,
}

/// The complete ruleset text for one sandbox (table created fresh).
pub fn ruleset(plan: &FirewallPlan<'_>) -> String {
    let FirewallPlan {
        table,
        host_veth: veth,
        addresses,
        transparent_port,
        explicit_port,
        resolver_port,
    } = plan;
    let sandbox = addresses.sandbox;
    let gateway = addresses.gateway;
    format!(
        r#"table inet {table} {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    iifname != "{veth}" return
    iifname "{veth}" meta nfproto ipv4 ip saddr {sandbox} tcp dport {{ 80, 443 }} redirect to :{transparent_port}
    iifname "{veth}" meta nfproto ipv4 ip saddr {sandbox} ip daddr {gateway} udp dport 53 redirect to :{resolver_port}
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname != "{veth}" return
    iifname "{veth}" meta nfproto != ipv4 drop
    iifname "{veth}" ip saddr != {sandbox} drop
    iifname "{veth}" ip daddr {gateway} tcp dport {{ {transparent_port}, {explicit_port} }} accept
    iifname "{veth}" ip daddr {gateway} udp dport {resolver_port} accept
    iifname "{veth}" ct state established,related accept
    iifname "{veth}" drop
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname != "{veth}" oifname != "{veth}" return
    iifname "{veth}" drop
    oifname "{veth}" drop
  }}
}}
"#
    )
}

/// Installs the sandbox's table (atomically: all rules or none).
pub async fn install(plan: &FirewallPlan<'_>) -> Result<(), RuntimeError> {
    // Delete a stale table of the same name first, inside the same transaction.
    let script = format!(
        "table inet {table}\ndelete table inet {table}\n{rules}",
        table = plan.table,
        rules = ruleset(plan)
    );
    run_tool(
        "installing the sandbox egress rules (nftables)",
        "nft",
        &["-f", "-"],
        Some(&script),
    )
    .await
}

/// Deletes a sandbox's table; a missing table is fine.
pub async fn remove(table: &str) {
    let script = format!("table inet {table}\ndelete table inet {table}\n");
    if let Err(error) = run_tool(
        "removing sandbox egress rules",
        "nft",
        &["-f", "-"],
        Some(&script),
    )
    .await
    {
        tracing::warn!(table, error = %error, "nftables table removal failed");
    }
}

/// Names of all `inet` tables on the host.
pub async fn list_tables() -> Result<Vec<String>, RuntimeError> {
    let listing = run_tool_output(
        "listing nftables tables",
        "nft",
        &["list", "tables", "inet"],
        None,
    )
    .await?;
    Ok(listing
        .lines()
        .filter_map(|line| line.trim().strip_prefix("table inet "))
        .map(|name| name.trim().to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn plan() -> FirewallPlan<'static> {
        FirewallPlan {
            table: "osb_s1",
            host_veth: "osbh1",
            addresses: SlotAddresses {
                slot: 1,
                gateway: Ipv4Addr::new(100, 96, 0, 5),
                sandbox: Ipv4Addr::new(100, 96, 0, 6),
            },
            transparent_port: 15001,
            explicit_port: 15002,
            resolver_port: 15053,
        }
    }

    #[test]
    fn web_ports_are_redirected_to_the_transparent_listener() {
        let text = ruleset(&plan());
        assert!(text.contains(
            r#"iifname "osbh1" meta nfproto ipv4 ip saddr 100.96.0.6 tcp dport { 80, 443 } redirect to :15001"#
        ));
        assert!(text.contains("ip daddr 100.96.0.5 udp dport 53 redirect to :15053"));
    }

    #[test]
    fn everything_else_is_dropped_and_spoofing_is_refused() {
        let text = ruleset(&plan());
        assert!(text.contains(r#"iifname "osbh1" ip saddr != 100.96.0.6 drop"#));
        assert!(text.contains(r#"iifname "osbh1" meta nfproto != ipv4 drop"#));
        assert!(text.contains("tcp dport { 15001, 15002 } accept"));
        assert!(text.contains(r#"    iifname "osbh1" drop"#));
        assert!(text.contains(r#"oifname "osbh1" drop"#));
        // The only accept rules are the proxy ports, the resolver and replies.
        let accepts = text
            .lines()
            .filter(|line| line.trim_end().ends_with("accept"))
            .count();
        assert_eq!(accepts, 3);
    }

    #[test]
    fn each_chain_first_leaves_packets_of_other_links() {
        let text = ruleset(&plan());
        for chain in ["prerouting", "input", "forward"] {
            let body = text
                .split(&format!("chain {chain} {{"))
                .nth(1)
                .expect("the chain");
            let first_rule = body.lines().nth(2).expect("a first rule").trim();
            assert!(
                first_rule.starts_with(r#"iifname != "osbh1""#) && first_rule.ends_with("return"),
                "{chain}: {first_rule}"
            );
        }
        // No other rule leaves early: every drop of this link is still reached.
        assert_eq!(text.matches("return").count(), 3);
    }
}
