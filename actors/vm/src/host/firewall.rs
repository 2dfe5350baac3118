//! Per-sandbox nftables rules, fail closed (DESIGN §6 rule 3). Two tables per sandbox, both
//! named after it, created together at boot and deleted together at destroy:
//! * `netdev` table, an **ingress** chain on the host-side veth (`policy drop`): only ARP and
//!   IPv4 from the sandbox's own address (no spoofing another sandbox's identity), and of that
//!   only tcp/80 and tcp/443 (redirected to the proxy below), tcp to the explicit proxy port on
//!   the gateway and udp/53 to the gateway (redirected to the resolver); everything else —
//!   host services, other ports, UDP/QUIC, ICMP, IPv6 — is dropped before the IP stack sees it;
//! * `inet` table: prerouting (nat) redirects tcp/80 and tcp/443 to the proxy's transparent
//!   port on the gateway and udp/53 to the worker resolver's port; forward drops anything
//!   routed from or to the sandbox.
//!
//! Why ingress: a chain hooked on one device sees that device's packets only, so the filter
//! costs the same with 1 or 200 sandboxes. An `inet` input chain per sandbox is passed by
//! *every* packet the host receives (the proxy's loopback traffic too), one chain per sandbox
//! (issue 17's density bench: proxy p50 ×1.78 at 200 sandboxes with such chains). The nat and
//! forward chains stay in `inet` (conntrack; nat sees only a connection's first packet, forward
//! only routed packets) and start with a guard that leaves at once for other links (`return`
//! in a base chain is its policy, accept, which lets the next table decide; a drop stays final).
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
        r#"table netdev {table} {{
  chain ingress {{
    type filter hook ingress device "{veth}" priority 0; policy drop;
    meta protocol arp accept
    meta protocol != ip drop
    ip saddr != {sandbox} drop
    ip protocol tcp tcp dport {{ 80, 443 }} accept
    ip daddr {gateway} tcp dport {explicit_port} accept
    ip daddr {gateway} udp dport 53 accept
  }}
}}
table inet {table} {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    iifname != "{veth}" return
    iifname "{veth}" meta nfproto ipv4 ip saddr {sandbox} tcp dport {{ 80, 443 }} redirect to :{transparent_port}
    iifname "{veth}" meta nfproto ipv4 ip saddr {sandbox} ip daddr {gateway} udp dport 53 redirect to :{resolver_port}
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

/// The rules of a pooled (unclaimed) sandbox: the same two tables, but the ingress chain admits
/// nothing at all (no ARP, no DNS, no proxy port) and nothing is routed from or to the link.
/// A claim replaces them with [`ruleset`] in one transaction ([`install`]), so there is never a
/// moment without a drop policy on the veth.
pub fn closed_ruleset(table: &str, veth: &str) -> String {
    format!(
        r#"table netdev {table} {{
  chain ingress {{
    type filter hook ingress device "{veth}" priority 0; policy drop;
  }}
}}
table inet {table} {{
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

/// Installs the closed tables of a pooled sandbox (atomically, replacing stale ones).
pub async fn install_closed(table: &str, veth: &str) -> Result<(), RuntimeError> {
    let script = format!(
        "{clear}{rules}",
        clear = clear_script(table),
        rules = closed_ruleset(table, veth)
    );
    run_tool(
        "installing a pooled sandbox's closed rules (nftables)",
        "nft",
        &["-f", "-"],
        Some(&script),
    )
    .await
}

/// Installs the sandbox's table (atomically: all rules or none).
pub async fn install(plan: &FirewallPlan<'_>) -> Result<(), RuntimeError> {
    // Delete a stale table of the same name first, inside the same transaction.
    let script = format!(
        "{clear}{rules}",
        clear = clear_script(plan.table),
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

/// Both families of a sandbox's tables.
const FAMILIES: [&str; 2] = ["netdev", "inet"];

/// Deletes both tables named `table`, creating them first so a missing one is no error.
fn clear_script(table: &str) -> String {
    FAMILIES
        .iter()
        .map(|family| format!("table {family} {table}\ndelete table {family} {table}\n"))
        .collect()
}

/// Deletes a sandbox's tables; missing tables are fine.
pub async fn remove(table: &str) {
    let script = clear_script(table);
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

/// Names of the host's `inet` and `netdev` tables (a sandbox's two tables count once).
pub async fn list_tables() -> Result<Vec<String>, RuntimeError> {
    let listing =
        run_tool_output("listing nftables tables", "nft", &["list", "tables"], None).await?;
    let mut names: Vec<String> = listing
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("table ")?;
            let (family, name) = rest.split_once(' ')?;
            FAMILIES.contains(&family).then(|| name.trim().to_owned())
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
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
    fn the_ingress_filter_admits_only_the_proxy_and_resolver_paths() {
        let text = ruleset(&plan());
        let ingress = text
            .split("chain ingress {")
            .nth(1)
            .and_then(|rest| rest.split("\n  }").next())
            .expect("an ingress chain");
        assert!(ingress.contains(r#"hook ingress device "osbh1" priority 0; policy drop;"#));
        assert!(ingress.contains("meta protocol != ip drop"));
        assert!(ingress.contains("ip saddr != 100.96.0.6 drop"));
        let accepts: Vec<&str> = ingress
            .lines()
            .map(str::trim)
            .filter(|line| line.ends_with("accept"))
            .collect();
        assert_eq!(
            accepts,
            [
                "meta protocol arp accept",
                "ip protocol tcp tcp dport { 80, 443 } accept",
                "ip daddr 100.96.0.5 tcp dport 15002 accept",
                "ip daddr 100.96.0.5 udp dport 53 accept",
            ],
            "nothing else is admitted: not the transparent or resolver ports directly, not \
             other host ports, not UDP elsewhere, not ICMP, not IPv6"
        );
        // The spoofing and protocol drops come before any accept of IP traffic.
        let position = |needle: &str| ingress.find(needle).expect(needle);
        assert!(position("ip saddr != 100.96.0.6 drop") < position("tcp dport { 80, 443 } accept"));
        assert!(position("meta protocol != ip drop") < position("tcp dport { 80, 443 } accept"));
    }

    #[test]
    fn nothing_is_routed_from_or_to_the_sandbox() {
        let text = ruleset(&plan());
        assert!(text.contains(r#"    iifname "osbh1" drop"#));
        assert!(text.contains(r#"oifname "osbh1" drop"#));
        assert!(!text.contains("hook input"), "no per-sandbox input chain");
    }

    #[test]
    fn the_shared_hooks_first_leave_packets_of_other_links() {
        let text = ruleset(&plan());
        for chain in ["prerouting", "forward"] {
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
        assert_eq!(text.matches("return").count(), 2);
    }

    #[test]
    fn a_pooled_sandbox_is_admitted_nothing() {
        let text = closed_ruleset("osb_s1", "osbh1");
        assert!(text.contains(r#"hook ingress device "osbh1" priority 0; policy drop;"#));
        assert!(!text.contains("accept\n"), "no accept rule at all: {text}");
        assert!(
            !text.contains("redirect"),
            "no redirect to the proxy: {text}"
        );
        assert!(text.contains(r#"    iifname "osbh1" drop"#));
    }

    #[test]
    fn both_tables_are_cleared_in_the_same_transaction() {
        let script = clear_script("osb_s1");
        assert!(script.contains("delete table netdev osb_s1"));
        assert!(script.contains("delete table inet osb_s1"));
    }
}
