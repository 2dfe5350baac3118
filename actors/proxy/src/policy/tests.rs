//! Unit tests of each policy decision point, the address classifier and the authority parser.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use osb_proto::{ErrorCode, HostPattern, SandboxId, SealedToken};
use proptest::prelude::*;

use super::*;
use crate::replacer::substitute_all;
use crate::secret_value::SecretValue;
use crate::session::{SealedSecret, Session};

fn patterns(list: &[&str]) -> Vec<HostPattern> {
    list.iter()
        .map(|p| HostPattern::parse(p).unwrap())
        .collect()
}

fn token(byte: u8) -> SealedToken {
    SealedToken::from_random_bytes([byte; 16])
}

fn session() -> Arc<Session> {
    let secrets = vec![
        Arc::new(SealedSecret {
            name: "GITHUB_TOKEN".into(),
            token: token(1),
            value: SecretValue::from("ghp_real"),
            allowed_hosts: patterns(&["api.github.test"]),
            version: 0,
        }),
        Arc::new(SealedSecret {
            name: "PROJECT_KEY".into(),
            token: token(2),
            value: SecretValue::from("pk_real"),
            allowed_hosts: vec![],
            version: 0,
        }),
    ];
    Arc::new(Session::new(
        SandboxId::new(),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        patterns(&["*.example.test", "plain.test:8080"]),
        secrets,
    ))
}

fn https(host: &str, port: u16) -> Target {
    Target {
        scheme: Scheme::Https,
        host: host.into(),
        port,
    }
}

#[test]
fn unknown_source_is_refused_with_407() {
    let refusal = SealingPolicy::default()
        .check_source(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), None)
        .unwrap_err();
    assert_eq!(refusal.status(), 407);
    assert_eq!(refusal.code, ErrorCode::UnknownSource);
}

#[test]
fn egress_follows_the_project_allowlist_only() {
    let policy = SealingPolicy::default();
    let session = session();
    assert!(policy.check_egress(&session, "a.example.test", 443).is_ok());
    // A secret's own allowedHosts never opens egress by itself (DESIGN.md §6 rule 3).
    let refusal = policy
        .check_egress(&session, "api.github.test", 443)
        .unwrap_err();
    assert_eq!(refusal.code, ErrorCode::HostNotAllowed);
    assert!(policy.check_egress(&session, "plain.test", 8080).is_ok());
    let refusal = policy
        .check_egress(&session, "example.test", 443)
        .unwrap_err();
    assert_eq!(refusal.code, ErrorCode::HostNotAllowed);
    assert!(policy
        .check_egress(&session, "a.example.test", 8443)
        .is_err());
}

#[test]
fn token_decisions() {
    let policy = SealingPolicy::default();
    let session = session();
    let secret = policy
        .check_token(&session, &token(1), &https("api.github.test", 443))
        .unwrap();
    assert_eq!(secret.name, "GITHUB_TOKEN");
    // Own list wins over the project allowlist.
    let refusal = policy
        .check_token(&session, &token(1), &https("a.example.test", 443))
        .unwrap_err();
    assert_eq!(refusal.code, ErrorCode::SecretNotAllowedForHost);
    assert_eq!(refusal.secret.as_deref(), Some("GITHUB_TOKEN"));
    assert!(!refusal.message.contains("ghp_real"));
    // No own list: the project allowlist applies.
    assert!(policy
        .check_token(&session, &token(2), &https("a.example.test", 443))
        .is_ok());
    let foreign = policy
        .check_token(&session, &token(7), &https("a.example.test", 443))
        .unwrap_err();
    assert_eq!(foreign.code, ErrorCode::UnknownToken);
    let plain = Target {
        scheme: Scheme::Http,
        host: "a.example.test".into(),
        port: 80,
    };
    let refusal = policy.check_token(&session, &token(2), &plain).unwrap_err();
    assert_eq!(refusal.code, ErrorCode::PlaintextSecret);
}

#[test]
fn fronting_is_misdirected() {
    let policy = SealingPolicy::default();
    let target = https("a.example.test", 443);
    assert!(policy
        .check_authority(&target, Some("A.Example.test"), Some("a.example.test"))
        .is_ok());
    assert!(policy
        .check_authority(&target, Some("a.example.test:443"), None)
        .is_ok());
    assert!(policy.check_authority(&target, None, None).is_ok());
    let refusal = policy
        .check_authority(&target, Some("evil.test"), None)
        .unwrap_err();
    assert_eq!(refusal.status(), 421);
    assert!(policy
        .check_authority(&target, Some("a.example.test:8443"), None)
        .is_err());
    assert!(policy
        .check_authority(&target, None, Some("evil.test"))
        .is_err());
    assert_eq!(
        policy
            .check_authority(&target, Some("a b"), None)
            .unwrap_err()
            .code,
        ErrorCode::InvalidInput
    );
}

#[test]
fn address_classes() {
    let strict = SealingPolicy::default();
    assert!(strict
        .check_address(IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34)))
        .is_ok());
    for blocked in [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "fc00::1",
        "::ffff:127.0.0.1",
    ] {
        assert!(
            strict.check_address(blocked.parse().unwrap()).is_err(),
            "{blocked}"
        );
    }
    let loopback_ok = SealingPolicy {
        addresses: AddressPolicy {
            allow_loopback: true,
            allow_private: false,
        },
    };
    assert!(loopback_ok
        .check_address(IpAddr::V6(Ipv6Addr::LOCALHOST))
        .is_ok());
    assert!(loopback_ok
        .check_address("10.0.0.1".parse().unwrap())
        .is_err());
    assert!(loopback_ok
        .check_address("169.254.169.254".parse().unwrap())
        .is_err());
}

#[test]
fn request_substitution_records_names() {
    let mut resolver = RequestSubstitution::new(
        SealingPolicy::default(),
        session(),
        https("api.github.test", 443),
    );
    let input = format!("a={}&b={}", token(1), token(1));
    let out = substitute_all(input.as_bytes(), &mut resolver).unwrap();
    assert_eq!(&*out, b"a=ghp_real&b=ghp_real");
    assert_eq!(resolver.substitutions(), 2);
    assert_eq!(resolver.used().iter().collect::<Vec<_>>(), ["GITHUB_TOKEN"]);
}

#[test]
fn authority_parsing_examples() {
    assert_eq!(
        parse_authority("Example.test:8443"),
        Some(("example.test".into(), Some(8443)))
    );
    assert_eq!(
        parse_authority("[::1]:443"),
        Some(("::1".into(), Some(443)))
    );
    assert_eq!(parse_authority("[::1]"), Some(("::1".into(), None)));
    for bad in [
        "", "a:0", "a:99999", "a:x", "user@a", "a/b", "[zz]:1", "::1", "a:",
    ] {
        assert_eq!(parse_authority(bad), None, "{bad:?}");
    }
}

proptest! {
    #[test]
    fn authority_parser_never_panics_and_round_trips(host in "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}", port in proptest::option::of(1u16..)) {
        let text = match port { Some(p) => format!("{host}:{p}"), None => host.clone() };
        prop_assert_eq!(parse_authority(&text), Some((host, port)));
    }

    #[test]
    fn authority_parser_total_on_garbage(text in "\\PC{0,40}") {
        let _ = parse_authority(&text);
    }
}

proptest! {
    /// Host patterns (parsed in `osb-proto`, matched here): parsing never panics, and the
    /// normalised form parses back to the same pattern.
    #[test]
    fn host_patterns_round_trip_through_their_normal_form(text in "\\PC{0,40}") {
        if let Ok(pattern) = HostPattern::parse(&text) {
            let again = HostPattern::parse(&pattern.to_string()).unwrap();
            prop_assert_eq!(again, pattern);
        }
    }

    #[test]
    fn wildcard_never_matches_its_apex(label in "[a-z][a-z0-9]{0,8}", suffix in "[a-z]{1,8}\\.[a-z]{2,5}") {
        let pattern = HostPattern::parse(&format!("*.{suffix}")).unwrap();
        prop_assert!(!pattern.matches(&suffix, 443));
        let subdomain = format!("{label}.{suffix}");
        prop_assert!(pattern.matches(&subdomain, 443));
    }
}

#[test]
fn names_with_empty_labels_are_no_authority() {
    // Found by the `authority` fuzz target's proptest twin: "." normalised to an empty host and
    // ".." to ".".
    for bad in [".", "..", ".:443", "a..b", ".a", "a..", "[::1]."] {
        assert_eq!(parse_authority(bad), None, "{bad}");
    }
    assert_eq!(parse_authority("a.b."), Some(("a.b".into(), None)));
}
