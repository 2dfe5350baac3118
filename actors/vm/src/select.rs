//! Choosing the worker's runtimes: `netns` when the worker runs as root with the required tools,
//! otherwise the development runtime — announced loudly, never silently; beside it, on request,
//! the microVM runtime. This module must never
//! pick the development runtime when the netns runtime is available.

use std::sync::Arc;

use crate::config::NetnsConfig;
use crate::dev::{DevelopmentRuntime, DEVELOPMENT_WARNING};
use crate::dispatch::DispatchRuntime;
use crate::error::RuntimeError;
use crate::events::EventSink;
use crate::microvm::{MicroVmConfig, MicroVmRuntime};
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

/// The worker's runtimes: the netns (or development) runtime as `select_runtime` picks it, and
/// the microVM runtime when `microvm` is given and this host can run it (otherwise the reason
/// is logged and `runtime: "microvm"` creates are refused with it). Give the microVM runtime its
/// own prefix, pool and data dir (its reaper owns them).
pub async fn select_runtimes(
    config: NetnsConfig,
    microvm: Option<MicroVmConfig>,
    sink: Arc<dyn EventSink>,
) -> Result<Arc<DispatchRuntime>, RuntimeError> {
    let netns = select_runtime(config, Arc::clone(&sink)).await?;
    let microvm = match microvm {
        None => Err("the worker is not configured for microVMs".to_owned()),
        Some(config) => match MicroVmRuntime::new(config, sink).await {
            Ok(runtime) => Ok(Arc::new(runtime) as Arc<dyn Runtime>),
            Err(error) => {
                tracing::warn!(error = %error, "microVM runtime unavailable; microvm sandboxes will be refused");
                Err(error.to_string())
            }
        },
    };
    Ok(Arc::new(DispatchRuntime::new(netns, microvm)))
}
