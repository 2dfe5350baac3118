//! Unit tests of the control core: replace-on-register, versioned updates, idempotent removals.

use std::net::{IpAddr, Ipv4Addr};

use osb_proto::{HostPattern, SandboxId, SealedToken};

use super::*;
use crate::secret_value::SecretValue;
use crate::session::SecretSpec;

fn spec(sandbox_id: SandboxId, version: u64) -> SessionSpec {
    SessionSpec {
        sandbox_id,
        source_ip: IpAddr::V4(Ipv4Addr::new(10, 201, 0, 7)),
        egress_allowlist: vec![HostPattern::parse("api.example.test").unwrap()],
        secrets: vec![SecretSpec {
            name: "API_KEY".into(),
            token: SealedToken::from_random_bytes([7; 16]),
            value: SecretValue::from("value-one"),
            allowed_hosts: vec![],
            version,
        }],
    }
}

fn update(version: u64, value: &str) -> SecretUpdate {
    SecretUpdate {
        name: "API_KEY".into(),
        version,
        value: SecretValue::from(value),
        allowed_hosts: None,
    }
}

fn value_of(control: &SessionControl, sandbox: SandboxId) -> Vec<u8> {
    let session = control.registry.session_of(sandbox).unwrap();
    session
        .secret_named("API_KEY")
        .unwrap()
        .value
        .expose_bytes()
        .to_vec()
}

#[test]
fn updates_apply_only_when_newer_than_the_registered_version() {
    let control = SessionControl::new(Arc::new(SessionRegistry::new()));
    let sandbox = SandboxId::new();
    assert_eq!(control.register(spec(sandbox, 2)).unwrap(), 1);
    assert!(!control.update_secret(sandbox, update(1, "older")).unwrap());
    assert!(!control.update_secret(sandbox, update(2, "same")).unwrap());
    assert_eq!(value_of(&control, sandbox), b"value-one");
    assert!(control.update_secret(sandbox, update(3, "newer")).unwrap());
    assert_eq!(value_of(&control, sandbox), b"newer");
    assert_eq!(control.version_of(sandbox, "API_KEY"), Some(3));
}

#[test]
fn an_update_of_an_unknown_secret_or_sandbox_is_refused_and_changes_nothing() {
    let control = SessionControl::new(Arc::new(SessionRegistry::new()));
    let sandbox = SandboxId::new();
    let missing = control.update_secret(sandbox, update(1, "x")).unwrap_err();
    assert_eq!(missing, RegistryError::UnknownSandbox(sandbox));
    control.register(spec(sandbox, 1)).unwrap();
    let mut other = update(5, "x");
    other.name = "OTHER".into();
    assert!(matches!(
        control.update_secret(sandbox, other),
        Err(RegistryError::UnknownSecret { .. })
    ));
    assert!(matches!(
        control.update_secret(sandbox, update(5, "")),
        Err(RegistryError::EmptyValue { .. })
    ));
    assert_eq!(value_of(&control, sandbox), b"value-one");
}

#[test]
fn re_registering_replaces_the_session_and_its_versions() {
    let control = SessionControl::new(Arc::new(SessionRegistry::new()));
    let sandbox = SandboxId::new();
    control.register(spec(sandbox, 4)).unwrap();
    control.register(spec(sandbox, 1)).unwrap();
    assert_eq!(control.version_of(sandbox, "API_KEY"), Some(1));
    assert_eq!(control.sandbox_ids(), vec![sandbox]);
}

#[test]
fn removals_are_idempotent() {
    let control = SessionControl::new(Arc::new(SessionRegistry::new()));
    let sandbox = SandboxId::new();
    control.register(spec(sandbox, 1)).unwrap();
    assert!(control.remove_secret(sandbox, "API_KEY").unwrap());
    assert!(!control.remove_secret(sandbox, "API_KEY").unwrap());
    assert!(control.set_egress_allowlist(sandbox, Vec::new()).unwrap());
    assert!(control.unregister(sandbox).unwrap());
    assert!(!control.unregister(sandbox).unwrap());
    assert!(!control.remove_secret(sandbox, "API_KEY").unwrap());
    assert!(!control.set_egress_allowlist(sandbox, Vec::new()).unwrap());
}
