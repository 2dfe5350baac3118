//! `osbd gateway --listen ADDR`: serves the REST API (DESIGN.md §5) over the configured
//! database and vault until interrupted. Sandbox routes arrive with the orchestration layer;
//! what exists (API keys, projects, secrets, health) is fully served.

use std::io::Write;
use std::net::SocketAddr;

use actix_web::{web, App, HttpServer};

use super::context::{open_vault, CommandError};
use crate::settings::Settings;
use osb_gateway::{configure, AppState};

/// Serves until SIGINT/SIGTERM.
pub(crate) async fn run(
    settings: &Settings,
    listen: SocketAddr,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    // A wrong setting stops the gateway before it opens anything.
    let listings = osb_gateway::ListingBounds::from_setting(
        std::env::var(osb_gateway::LISTING_TTL_ENV).ok().as_deref(),
    )
    .map_err(CommandError::Usage)?;
    let http_workers = crate::http_workers::from_env(crate::http_workers::Share::All)
        .map_err(CommandError::Usage)?;
    let vault = open_vault(settings, err).await?;
    let nats_url = std::env::var(osb_bus::NATS_URL_ENV).ok();
    let bus = osb_bus::connect_bus(nats_url.as_deref())
        .await
        .map_err(|error| CommandError::Failed(error.to_string()))?;
    let limiter = osb_gateway::RateLimiter::from_setting(
        std::env::var(osb_gateway::RATE_LIMIT_ENV).ok().as_deref(),
    )
    .map_err(CommandError::Usage)?;
    let listings = std::sync::Arc::new(osb_gateway::ListingCache::new(listings));
    let state = web::Data::new(
        AppState::new(vault, bus)
            .with_rate_limiter(std::sync::Arc::new(limiter))
            .with_listing_cache(listings),
    );
    let server = HttpServer::new(move || App::new().app_data(state.clone()).configure(configure))
        .workers(http_workers)
        .bind(listen)
        .map_err(|error| {
            CommandError::Usage(format!(
                "cannot listen on {listen}: {error}; choose another address with --listen"
            ))
        })?;
    let bound: Vec<SocketAddr> = server.addrs();
    for address in &bound {
        writeln!(out, "listening on http://{address}/api")?;
    }
    out.flush()?;
    server
        .run()
        .await
        .map_err(|error| CommandError::Failed(format!("the gateway stopped: {error}")))
}
