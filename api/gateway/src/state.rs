//! Shared state of the gateway: the store, the vault and the bus. Cheap to clone into every
//! worker.

use std::sync::Arc;

use osb_bus::Bus;
use osb_store::Store;
use osb_vault::Vault;

use osb_control::SandboxService;

use super::key_cache::KeyCache;
use super::key_usage::KeyUsage;
use super::listing_cache::ListingCache;
use super::metrics_cache::MetricsCache;
use super::rate_limit::RateLimiter;
use super::sse_slots::SseSlots;

/// What handlers reach through `web::Data<AppState>`.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub vault: Arc<Vault>,
    /// Where change events go (`osb.project.<id>.secret_updated`, …): names and versions only.
    pub bus: Arc<dyn Bus>,
    /// The control plane (sandbox sagas, worker links); `None` for a gateway that serves only
    /// projects and secrets, whose sandbox routes then answer 503.
    pub control: Option<Arc<SandboxService>>,
    /// Recently looked-up API keys by hash (ADR 0033).
    pub key_cache: Arc<KeyCache>,
    /// Rendered pages of the project and sandbox listings (ADR 0035).
    pub listings: Arc<ListingCache>,
    /// Key uses noted for `last_used_at`, written in batches (ADR 0026).
    pub key_usage: Arc<KeyUsage>,
    /// Token buckets per API key (ADR 0027).
    pub rate_limiter: Arc<RateLimiter>,
    /// Cached store gauges and the optional scrape key of `/metrics` (ADR 0027).
    pub metrics: Arc<MetricsCache>,
    /// Open event streams per org (ADR 0027).
    pub sse_slots: Arc<SseSlots>,
}

impl AppState {
    /// State over an opened vault (whose store is reused) and a bus. Inside an async runtime it
    /// also starts following the bus's change events for the listing cache (ADR 0035).
    pub fn new(vault: Vault, bus: Arc<dyn Bus>) -> Self {
        super::change_events::follow(bus.clone());
        Self {
            store: vault.store().clone(),
            vault: Arc::new(vault),
            bus,
            control: None,
            key_cache: Arc::new(KeyCache::default()),
            listings: Arc::new(ListingCache::default()),
            key_usage: Arc::new(KeyUsage::default()),
            rate_limiter: Arc::new(RateLimiter::default()),
            metrics: Arc::new(MetricsCache::default()),
            sse_slots: Arc::new(SseSlots::default()),
        }
    }

    /// The same state with another API-key cache (tests shorten or turn off its ttl).
    pub fn with_key_cache(mut self, key_cache: Arc<KeyCache>) -> Self {
        self.key_cache = key_cache;
        self
    }

    /// The same state with another listing cache (tests shorten its ttl or bounds).
    pub fn with_listing_cache(mut self, listings: Arc<ListingCache>) -> Self {
        self.listings = listings;
        self
    }

    /// The same state with another key-use recorder (tests shorten or lengthen its interval).
    pub fn with_key_usage(mut self, key_usage: Arc<KeyUsage>) -> Self {
        self.key_usage = key_usage;
        self
    }

    /// The same state with other rate limits per key.
    pub fn with_rate_limiter(mut self, rate_limiter: Arc<RateLimiter>) -> Self {
        self.rate_limiter = rate_limiter;
        self
    }

    /// The same state with another metrics cache (tests set its ttl and key).
    pub fn with_metrics(mut self, metrics: Arc<MetricsCache>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The same state with another cap on event streams per org.
    pub fn with_sse_slots(mut self, sse_slots: Arc<SseSlots>) -> Self {
        self.sse_slots = sse_slots;
        self
    }

    /// The same state with a control plane behind the sandbox routes.
    pub fn with_control(mut self, control: Arc<SandboxService>) -> Self {
        self.control = Some(control);
        self
    }
}
