//! Store integration tests against real PostgreSQL and SQLite (a fresh database per test).

mod checkpoint_bytes;
mod migrations;
mod outbox;
mod pages;
mod projects;
mod quotas;
mod sandboxes;
mod secrets;
mod worker_usage;

use osb_proto::OrgId;
use osb_store::{NewProject, Store};

pub(crate) fn new_project(org_id: OrgId, name: &str) -> NewProject {
    NewProject {
        org_id,
        name: name.to_owned(),
        template: None,
        cpu_count: 1,
        memory_mb: 512,
        timeout_sec: 300,
        egress_allowlist: vec!["api.example.test".to_owned()],
        runtime: None,
    }
}

pub(crate) async fn org(store: &Store, name: &str) -> OrgId {
    store.create_org(name).await.expect("create org").id
}
