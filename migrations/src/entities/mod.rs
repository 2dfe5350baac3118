//! sea-orm entities, one file per table. Crate-private: nothing outside the store sees them.

pub(crate) mod api_keys;
pub(crate) mod checkpoints;
pub(crate) mod encryption_keys;
pub(crate) mod orgs;
pub(crate) mod outbox;
pub(crate) mod projects;
pub(crate) mod saga_log;
pub(crate) mod sagas;
pub(crate) mod sandboxes;
pub(crate) mod secrets;
pub(crate) mod snapshots;
pub(crate) mod vault_state;
