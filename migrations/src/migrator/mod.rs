//! Schema migrations, written once for both PostgreSQL and SQLite through sea-query's portable
//! column types. Each migration has a real `down` so `up → down → up` is clean (a test proves
//! it on both engines). Migrations never touch secret plaintext: the schema only has room for
//! ciphertext.

use sea_orm_migration::prelude::*;

mod columns;
mod m0001_tenancy;
mod m0002_projects_and_secrets;
mod m0003_sandboxes_and_checkpoints;
mod m0004_sagas_and_audit;
mod m0005_sandbox_runtime;
mod m0006_listing_keysets_and_sandbox_metadata;
mod m0010_secret_row_binding;
mod m0011_runtime_selection;
mod m0012_api_key_lifecycle;
mod m0013_org_quotas;
mod m0020_saga_fencing;
mod m0021_outbox;
mod m0022_checkpoint_bytes;

pub(crate) mod idens;

/// Every table the application owns, in creation order (the canary dump walks them).
pub const APPLICATION_TABLES: &[&str] = &[
    "orgs",
    "api_keys",
    "encryption_keys",
    "projects",
    "secrets",
    "sandboxes",
    "checkpoints",
    "snapshots",
    "sagas",
    "saga_log",
    "processed_commands",
    "audit_events",
    "vault_state",
    "outbox",
];

/// How many migrations the schema has (tests compare applied counts against it).
pub fn migration_count() -> usize {
    <Migrator as MigratorTrait>::migrations().len()
}

/// The ordered list of migrations.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_tenancy::Migration),
            Box::new(m0002_projects_and_secrets::Migration),
            Box::new(m0003_sandboxes_and_checkpoints::Migration),
            Box::new(m0004_sagas_and_audit::Migration),
            Box::new(m0005_sandbox_runtime::Migration),
            Box::new(m0006_listing_keysets_and_sandbox_metadata::Migration),
            Box::new(m0010_secret_row_binding::Migration),
            Box::new(m0011_runtime_selection::Migration),
            Box::new(m0012_api_key_lifecycle::Migration),
            Box::new(m0013_org_quotas::Migration),
            Box::new(m0020_saga_fencing::Migration),
            Box::new(m0021_outbox::Migration),
            Box::new(m0022_checkpoint_bytes::Migration),
        ]
    }
}
