//! Choosing the bus: `NATS_URL` set → NATS (with the event and command streams ensured, the
//! commands in the space `OPENSANDBOX_COMMAND_SPACE` names when set), unset → the
//! in-process bus of the embedded mode, whose event ring holds `OPENSANDBOX_EVENT_RING` events
//! (default 10 000).

use std::sync::Arc;

use crate::bus_trait::{Bus, BusError};
use crate::command::{CommandSettings, CommandSpace};
use crate::event_ring::DEFAULT_EVENT_RING_CAPACITY;
use crate::in_process::InProcessBus;
use crate::nats::NatsBus;

/// The environment variable naming the NATS server.
pub const NATS_URL_ENV: &str = "NATS_URL";
/// Scopes worker commands on NATS to a space of their own (`worker_<tag>`, stream
/// `OSB_COMMANDS_<TAG>`): for tests that share one NATS server. Unset in production.
pub const COMMAND_SPACE_ENV: &str = "OPENSANDBOX_COMMAND_SPACE";
/// The environment variable sizing the in-process bus's event ring (events replayable by
/// `GET /api/events` with `Last-Event-ID` or `since`).
pub const EVENT_RING_ENV: &str = "OPENSANDBOX_EVENT_RING";
const MAX_EVENT_RING: usize = 1_000_000;

/// Parses an event ring size: a whole number from 1 to 1 000 000.
pub fn parse_event_ring_size(text: &str) -> Result<usize, BusError> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|size| (1..=MAX_EVENT_RING).contains(size))
        .ok_or_else(|| BusError::InvalidSetting {
            name: EVENT_RING_ENV,
            reason: format!("{text:?} is not a number of events from 1 to {MAX_EVENT_RING}"),
        })
}

/// Connects to NATS when a URL is given, otherwise returns a fresh in-process bus.
pub async fn connect_bus(nats_url: Option<&str>) -> Result<Arc<dyn Bus>, BusError> {
    match nats_url.filter(|url| !url.trim().is_empty()) {
        Some(url) => {
            let mut bus = NatsBus::connect(url).await?;
            if let Ok(tag) = std::env::var(COMMAND_SPACE_ENV) {
                if !tag.trim().is_empty() {
                    let space = CommandSpace::scoped(tag.trim()).map_err(|error| {
                        BusError::InvalidSetting {
                            name: COMMAND_SPACE_ENV,
                            reason: error.to_string(),
                        }
                    })?;
                    bus = bus.with_command_settings(CommandSettings {
                        space,
                        ..CommandSettings::default()
                    });
                }
            }
            bus.ensure_streams().await?;
            Ok(Arc::new(bus))
        }
        None => {
            let capacity = match std::env::var(EVENT_RING_ENV) {
                Ok(text) if !text.trim().is_empty() => parse_event_ring_size(&text)?,
                _ => DEFAULT_EVENT_RING_CAPACITY,
            };
            Ok(Arc::new(InProcessBus::with_event_capacity(capacity)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_are_checked() {
        assert_eq!(parse_event_ring_size(" 500 ").unwrap(), 500);
        for bad in ["0", "-1", "ten", "1000001", ""] {
            let error = parse_event_ring_size(bad).unwrap_err().to_string();
            assert!(error.contains(EVENT_RING_ENV), "{error}");
        }
    }
}
