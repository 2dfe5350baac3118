//! The REST gateway (actix-web), DESIGN.md §5. One resource per file; each handler parses and
//! validates its request into typed values, calls the store or vault, and maps every failure to
//! `{"error": "<sentence>", "code": "<snake_case>"}` with the right status. Handlers never echo
//! a secret value, and a refused request changes nothing.
//!
//! It never imports tonic or the gRPC link: the control plane is reached through
//! `osb_control::SandboxService` and the few types `osb-control` exports for it.

#![forbid(unsafe_code)]

mod aliases;
mod api_keys;
mod auth;
mod change_events;
mod dashboard;
mod error;
mod event_replay;
mod event_stream;
mod events;
mod health;
mod json;
mod key_cache;
mod key_usage;
mod keys;
mod listing_cache;
mod metrics;
mod metrics_cache;
mod openapi;
mod pagination;
mod project_replace;
mod projects;
mod rate_limit;
mod saga_views;
mod sandbox_ops;
mod sandbox_storage;
mod sandbox_view;
mod sandboxes;
mod scopes;
mod secrets;
mod sse_slots;
mod state;
mod validate;
mod workers;

use actix_web::web;

pub use api_keys::{hash_api_key, ApiKey, API_KEY_PREFIX};
pub use error::ApiError;
pub use events::SecretChanged;
pub use key_cache::{KeyCache, DEFAULT_KEY_CACHE_CAPACITY, DEFAULT_KEY_CACHE_TTL};
pub use key_usage::{KeyUsage, DEFAULT_KEY_USE_FLUSH};
pub use keys::{validate_key_name, KeyView};
pub use listing_cache::{
    ListingBounds, ListingCache, ListingKey, DEFAULT_LISTING_BYTES, DEFAULT_LISTING_ENTRIES,
    DEFAULT_LISTING_ENTRIES_PER_ORG, DEFAULT_LISTING_TTL, LISTING_TTL_ENV, MAX_LISTING_TTL,
};
pub use metrics_cache::{MetricsCache, StoreGauges, DEFAULT_METRICS_TTL, METRICS_KEY_ENV};
pub use pagination::RenderedPage;
pub use rate_limit::{RateLimiter, DEFAULT_RATE_BURST, DEFAULT_RATE_PER_SECOND, RATE_LIMIT_ENV};
pub use sandbox_view::{CheckpointView, SandboxView, SnapshotView, COOPERATIVE_WARNING};
pub use scopes::{KeyScope, RouteClass, UnknownScope, KEY_SCOPES};
pub use sse_slots::{SseSlots, DEFAULT_STREAMS_PER_ORG};
pub use state::AppState;

/// Registers every route under `/api` plus the health endpoints and the dashboard page.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .app_data(json::json_config())
        .app_data(json::path_config())
        .service(
            web::scope("/api")
                .configure(keys::routes)
                .configure(projects::routes)
                .configure(project_replace::routes)
                .configure(secrets::routes)
                .configure(sandboxes::routes)
                .configure(sandbox_ops::routes)
                .configure(sandbox_storage::routes)
                .configure(event_stream::routes)
                .configure(saga_views::routes)
                .configure(workers::routes)
                .configure(openapi::routes)
                .default_service(web::to(error::unknown_route))
                .wrap(actix_web::middleware::from_fn(auth::authenticate_first)),
        )
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/dashboard", web::get().to(dashboard::page))
        .route("/dashboard/{asset}", web::get().to(dashboard::asset));
}
