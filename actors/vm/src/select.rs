//! Choosing the worker's runtime: `netns` when the worker runs as root with the required tools,
//! otherwise the development runtime — announced loudly, never silently. This module must never
//! pick the development runtime when the netns runtime is available.

use std::sync::Arc;

use crate::config::NetnsConfig;
use crate::dev::{DevelopmentRuntime, DEVELOPMENT_WARNING};
use crate::error::RuntimeError;
use crate::events::EventSink;
use crate::netns::{unavailable_reason, NetnsRuntime};
use crate::runtime::Runtime;

/// The netns runtime if this host can run it, else the development runtime with a loud warning.
pub async fn select_runtime(
    config: NetnsConfig,
    sink: Arc<dyn EventSink>,
) -> Result<Arc<dyn Runtime>, RuntimeError> {
    match unavailable_reason() {
        None => Ok(Arc::new(NetnsRuntime::new(config, sink).await?)),
        Some(reason) => {
            tracing::warn!(reason = %reason, "netns sandbox runtime unavailable; falling back to the development runtime");
            tracing::warn!("{DEVELOPMENT_WARNING}");
            eprintln!("WARNING: {DEVELOPMENT_WARNING} (netns runtime unavailable: {reason})");
            Ok(Arc::new(DevelopmentRuntime::new(&config.data_dir)?))
        }
    }
}
