//! Queries, one file per aggregate, all as inherent methods on `Store`. Every query filters by
//! org where the row has one, so a caller cannot read across the tenant boundary by mistake.

mod api_keys;
mod checkpoint_bytes;
mod checkpoints;
mod convert;
mod encryption_keys;
mod orgs;
mod outbox;
mod pages;
mod projects;
mod quotas;
mod sagas;
mod sandboxes;
mod secrets;
mod vault_state;
mod worker_usage;
