//! Unit tests of the session registry: register, update in place, add/remove, unregister.

use std::net::{IpAddr, Ipv4Addr};

use osb_proto::{HostPattern, SandboxId, SealedToken};

use super::*;

fn token(byte: u8) -> SealedToken {
    SealedToken::from_random_bytes([byte; 16])
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 200, 0, last))
}

fn spec(sandbox_id: SandboxId, last: u8) -> SessionSpec {
    SessionSpec {
        sandbox_id,
        source_ip: ip(last),
        egress_allowlist: vec![HostPattern::parse("api.example.test").unwrap()],
        secrets: vec![SecretSpec {
            name: "API_KEY".into(),
            token: token(last),
            value: SecretValue::from("value-one"),
            allowed_hosts: vec![],
            version: 0,
        }],
    }
}

#[test]
fn register_lookup_unregister() {
    let registry = SessionRegistry::new();
    let sandbox = SandboxId::new();
    registry.register(spec(sandbox, 1)).unwrap();
    let session = registry.lookup(ip(1)).unwrap();
    assert_eq!(session.sandbox_id, sandbox);
    assert!(registry.lookup(ip(2)).is_none());
    registry.unregister(sandbox).unwrap();
    assert!(registry.lookup(ip(1)).is_none());
    assert_eq!(
        registry.unregister(sandbox),
        Err(RegistryError::UnknownSandbox(sandbox))
    );
}

#[test]
fn an_address_belongs_to_one_sandbox() {
    let registry = SessionRegistry::new();
    let first = SandboxId::new();
    registry.register(spec(first, 1)).unwrap();
    let error = registry.register(spec(SandboxId::new(), 1)).unwrap_err();
    assert!(matches!(error, RegistryError::AddressInUse { owner, .. } if owner == first));
}

#[test]
fn update_keeps_the_token_and_old_snapshots_stay_whole() {
    let registry = SessionRegistry::new();
    let sandbox = SandboxId::new();
    registry.register(spec(sandbox, 1)).unwrap();
    let before = registry.lookup(ip(1)).unwrap();
    registry
        .update_secret_value(sandbox, "API_KEY", SecretValue::from("value-two"))
        .unwrap();
    let after = registry.lookup(ip(1)).unwrap();
    assert_eq!(
        before
            .secret_for_token(&token(1))
            .unwrap()
            .value
            .expose_bytes(),
        b"value-one"
    );
    assert_eq!(
        after
            .secret_for_token(&token(1))
            .unwrap()
            .value
            .expose_bytes(),
        b"value-two"
    );
    assert!(registry
        .update_secret_value(sandbox, "NOPE", SecretValue::from("x"))
        .is_err());
    assert!(registry
        .update_secret_value(sandbox, "API_KEY", SecretValue::new(Vec::new()))
        .is_err());
}

#[test]
fn add_and_remove_secrets() {
    let registry = SessionRegistry::new();
    let sandbox = SandboxId::new();
    registry.register(spec(sandbox, 1)).unwrap();
    registry
        .upsert_secret(
            sandbox,
            SecretSpec {
                name: "OTHER".into(),
                token: token(9),
                value: SecretValue::from("other-value"),
                allowed_hosts: vec![],
                version: 0,
            },
        )
        .unwrap();
    assert!(registry
        .lookup(ip(1))
        .unwrap()
        .secret_for_token(&token(9))
        .is_some());
    let duplicate_token = SecretSpec {
        name: "THIRD".into(),
        token: token(9),
        value: SecretValue::from("v"),
        allowed_hosts: vec![],
        version: 0,
    };
    assert!(matches!(
        registry.upsert_secret(sandbox, duplicate_token),
        Err(RegistryError::DuplicateSecret { .. })
    ));
    registry.remove_secret(sandbox, "OTHER").unwrap();
    assert!(registry
        .lookup(ip(1))
        .unwrap()
        .secret_for_token(&token(9))
        .is_none());
    assert!(registry.remove_secret(sandbox, "OTHER").is_err());
}
