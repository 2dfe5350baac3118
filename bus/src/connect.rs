//! Choosing the bus: `NATS_URL` set → NATS (with the event stream ensured), unset → the
//! in-process bus of the embedded mode.

use std::sync::Arc;

use crate::bus_trait::{Bus, BusError};
use crate::in_process::InProcessBus;
use crate::nats::NatsBus;

/// The environment variable naming the NATS server.
pub const NATS_URL_ENV: &str = "NATS_URL";

/// Connects to NATS when a URL is given, otherwise returns a fresh in-process bus.
pub async fn connect_bus(nats_url: Option<&str>) -> Result<Arc<dyn Bus>, BusError> {
    match nats_url.filter(|url| !url.trim().is_empty()) {
        Some(url) => {
            let bus = NatsBus::connect(url).await?;
            bus.ensure_streams().await?;
            Ok(Arc::new(bus))
        }
        None => Ok(Arc::new(InProcessBus::new())),
    }
}
