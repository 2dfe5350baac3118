//! Shared state of the gateway: the store and the vault. Cheap to clone into every worker.

use std::sync::Arc;

use osb_store::Store;
use osb_vault::Vault;

/// What handlers reach through `web::Data<AppState>`.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub vault: Arc<Vault>,
}

impl AppState {
    /// State over an opened vault (whose store is reused).
    pub fn new(vault: Vault) -> Self {
        Self {
            store: vault.store().clone(),
            vault: Arc::new(vault),
        }
    }
}
