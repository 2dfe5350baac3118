//! Vault integration tests against real PostgreSQL and SQLite.

mod canary;
mod fanout;
mod key_mistakes;
mod rotation;
mod row_binding;

use std::collections::HashMap;

use osb_proto::{OrgId, ProjectId};
use osb_store::{NewProject, Store};
use osb_vault::{KeyringConfig, MasterKey, Vault};

/// A generated key as hex.
pub(crate) fn hex_key() -> String {
    MasterKey::generate().to_hex().to_string()
}

/// A keyring configuration from (env name, hex) pairs.
pub(crate) fn config(pairs: &[(&str, &str)]) -> KeyringConfig {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    KeyringConfig::from_lookup(|name| map.get(name).cloned()).expect("valid key config")
}

pub(crate) async fn vault(store: &Store, pairs: &[(&str, &str)]) -> Vault {
    Vault::open(store.clone(), config(pairs))
        .await
        .expect("vault opens")
}

pub(crate) async fn project(store: &Store) -> (OrgId, ProjectId) {
    let org = store
        .create_org(&format!("org-{}", uuid::Uuid::new_v4().simple()))
        .await
        .expect("org");
    let project = store
        .create_project(NewProject {
            org_id: org.id,
            name: "web".to_owned(),
            template: None,
            cpu_count: 1,
            memory_mb: 256,
            timeout_sec: 60,
            egress_allowlist: vec![],
            runtime: None,
        })
        .await
        .expect("project");
    (org.id, project.id)
}

pub(crate) const PRIMARY: &str = "OPENSANDBOX_SECRET_ENCRYPTION_KEY";
