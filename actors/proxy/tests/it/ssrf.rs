//! SSRF ranges are complete (issue 11 item 7): every IANA special-purpose IPv4 and IPv6 block
//! that is not globally reachable — and the IPv6 forms that embed an IPv4 address (mapped,
//! compatible, NAT64, 6to4, Teredo) — is refused by the strict address policy before a packet is
//! sent; ordinary public addresses pass.

use std::net::IpAddr;

use osb_proxy::{AddressPolicy, SealingPolicy};

/// (address, range it stands for) — all must be refused without operator opt-in.
const FORBIDDEN: &[(&str, &str)] = &[
    ("0.0.0.1", "0.0.0.0/8 this network"),
    ("10.1.2.3", "10.0.0.0/8 private"),
    ("100.64.0.1", "100.64.0.0/10 shared address space"),
    ("127.0.0.1", "127.0.0.0/8 loopback"),
    ("169.254.169.254", "169.254.0.0/16 link-local, metadata"),
    ("172.16.0.1", "172.16.0.0/12 private"),
    ("192.0.0.8", "192.0.0.0/24 IETF protocol assignments"),
    ("192.0.0.170", "192.0.0.170/32 NAT64 discovery"),
    ("192.0.2.1", "192.0.2.0/24 TEST-NET-1"),
    ("192.88.99.1", "192.88.99.0/24 6to4 relay anycast"),
    ("192.168.1.1", "192.168.0.0/16 private"),
    ("198.18.0.1", "198.18.0.0/15 benchmarking"),
    ("198.19.255.254", "198.18.0.0/15 benchmarking (upper half)"),
    ("198.51.100.7", "198.51.100.0/24 TEST-NET-2"),
    ("203.0.113.9", "203.0.113.0/24 TEST-NET-3"),
    ("224.0.0.1", "224.0.0.0/4 multicast"),
    ("240.0.0.1", "240.0.0.0/4 reserved"),
    ("255.255.255.255", "255.255.255.255/32 broadcast"),
    ("100.100.100.200", "metadata (Alibaba)"),
    ("::", "::/128 unspecified"),
    ("::1", "::1/128 loopback"),
    ("::ffff:10.0.0.1", "::ffff:0:0/96 IPv4-mapped private"),
    ("::ffff:127.0.0.1", "::ffff:0:0/96 IPv4-mapped loopback"),
    (
        "::ffff:169.254.169.254",
        "::ffff:0:0/96 IPv4-mapped metadata",
    ),
    ("::8.8.8.8", "::/96 IPv4-compatible (deprecated)"),
    ("::127.0.0.1", "::/96 IPv4-compatible loopback"),
    ("64:ff9b::a00:1", "64:ff9b::/96 NAT64 of 10.0.0.1"),
    ("64:ff9b::7f00:1", "64:ff9b::/96 NAT64 of 127.0.0.1"),
    (
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::/96 NAT64 of 169.254.169.254",
    ),
    ("64:ff9b:1::1", "64:ff9b:1::/48 local-use NAT64"),
    ("100::1", "100::/64 discard-only"),
    ("2001::1", "2001::/32 Teredo"),
    ("2001:2::1", "2001:2::/48 benchmarking"),
    ("2001:10::1", "2001:10::/28 ORCHID"),
    ("2001:db8::1", "2001:db8::/32 documentation"),
    ("2002:a00:1::1", "2002::/16 6to4"),
    ("2002:808:808::1", "2002::/16 6to4 of a public address"),
    ("3fff::1", "3fff::/20 documentation"),
    ("5f00::1", "5f00::/16 segment routing"),
    ("fc00::1", "fc00::/7 unique local"),
    ("fd00:ec2::254", "metadata (AWS IPv6)"),
    ("fe80::1", "fe80::/10 link-local"),
    ("fec0::1", "fec0::/10 site-local (deprecated)"),
    ("ff02::1", "ff00::/8 multicast"),
];

const PUBLIC: &[&str] = &[
    "1.1.1.1",
    "8.8.8.8",
    "93.184.216.34",
    "192.0.1.1",
    "198.17.255.1",
    "198.20.0.1",
    "223.255.255.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001::1",
    "64:ff9b::808:808",
    "::ffff:8.8.8.8",
];

#[test]
fn every_special_purpose_range_is_refused_and_public_addresses_pass() {
    let strict = SealingPolicy::default();
    let mut missed = Vec::new();
    for (address, range) in FORBIDDEN {
        let ip: IpAddr = address.parse().unwrap();
        if strict.check_address(ip).is_ok() {
            missed.push(format!("{address} ({range})"));
        }
    }
    assert!(
        missed.is_empty(),
        "dialled although special-purpose: {missed:#?}"
    );
    for address in PUBLIC {
        let ip: IpAddr = address.parse().unwrap();
        assert!(strict.check_address(ip).is_ok(), "{address} is public");
    }
}

#[test]
fn operator_opt_ins_open_only_their_own_class() {
    let open = SealingPolicy {
        addresses: AddressPolicy {
            allow_loopback: true,
            allow_private: true,
        },
    };
    for allowed in [
        "127.0.0.1",
        "::1",
        "10.0.0.1",
        "fd12::1",
        "100.64.0.1",
        "::ffff:10.0.0.1",
    ] {
        assert!(
            open.check_address(allowed.parse().unwrap()).is_ok(),
            "{allowed}"
        );
    }
    for never in [
        "169.254.169.254",
        "fd00:ec2::254",
        "192.0.2.1",
        "198.18.0.1",
        "240.0.0.1",
        "2001:db8::1",
        "2002:a00:1::1",
        "::8.8.8.8",
        "ff02::1",
    ] {
        assert!(
            open.check_address(never.parse().unwrap()).is_err(),
            "{never}"
        );
    }
}
