//! Bus contract tests: one suite, run against the in-process bus and a real NATS server
//! (`OSB_TEST_NATS_URL`, default `nats://127.0.0.1:4222`). Every test uses its own random
//! subject prefix so runs and tests never see each other's traffic.

// Shared test bodies are plain async fns (not #[test]), so clippy's test exemption misses them.
#![allow(clippy::unwrap_used)]

/// Runs each named async fn (taking an `Arc<dyn Bus>`) as a test on the in-process bus and on
/// NATS (with the event stream set up).
#[macro_export]
macro_rules! on_both_buses {
    ($($case:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case($crate::in_process_bus().await).await;
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case($crate::nats_bus_with_streams().await).await;
                }
            )*
        }
    };
}

mod commands;
mod contract;
mod jetstream;
mod replay;

use std::sync::Arc;

use osb_bus::{Bus, InProcessBus, NatsBus};

pub(crate) fn nats_url() -> String {
    std::env::var("OSB_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A NATS bus whose event stream is set up (as `connect_bus` does).
pub(crate) async fn nats_bus_with_streams() -> Arc<dyn Bus> {
    let bus = NatsBus::connect(&nats_url())
        .await
        .expect("NATS is running (scripts/services.sh starts it)");
    bus.ensure_streams().await.expect("the event stream");
    Arc::new(bus)
}

pub(crate) async fn in_process_bus() -> Arc<dyn Bus> {
    Arc::new(InProcessBus::new())
}

/// A subject prefix no other test uses.
pub(crate) fn prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}
