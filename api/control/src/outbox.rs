//! The outbox relay: publishes the events the control plane committed to the outbox table,
//! oldest first, each with `Nats-Msg-Id` = its message id, and removes them once the bus
//! acknowledged them (a JetStream ack on NATS). Woken right after every append; also looks every
//! second, so events a crashed process committed are published by whoever runs next. When the
//! bus is down it backs off and keeps the events: nothing is lost between commit and publish,
//! and a repeat after a crash (published, not yet removed) is dropped by the bus's duplicate
//! window. It must never build events itself or publish anything that is not in the table.

use std::sync::Arc;
use std::time::Duration;

use osb_bus::{Bus, BusMessage, MSG_ID_HEADER};
use osb_store::Store;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Events read and published per round.
const BATCH: u64 = 128;
/// How often the table is looked at without a wake-up.
const IDLE_LOOK: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A handle on the running relay; cheap to clone. The relay stops when the last handle drops.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    wake: Arc<Notify>,
    _task: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl OutboxRelay {
    /// Starts relaying `store`'s outbox to `bus` (on the current tokio runtime).
    pub fn start(store: Store, bus: Arc<dyn Bus>) -> Self {
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(relay(store, bus, wake.clone()));
        Self {
            wake,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// Something was appended: publish it now rather than at the next look.
    pub fn poke(&self) {
        self.wake.notify_one();
    }
}

async fn relay(store: Store, bus: Arc<dyn Bus>, wake: Arc<Notify>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        match drain_once(&store, bus.as_ref()).await {
            Ok(published) if published as u64 == BATCH => continue,
            Ok(_) => {
                backoff = FIRST_BACKOFF;
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_LOOK) => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "outbox relay: events wait for the bus");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Publishes one batch of waiting events in order and removes those the bus took. Returns how
/// many were published; an error leaves the rest (from the first failure on) waiting.
pub async fn drain_once(store: &Store, bus: &dyn Bus) -> Result<usize, String> {
    let waiting = store
        .waiting_outbox(BATCH)
        .await
        .map_err(|error| error.to_string())?;
    let mut published = Vec::with_capacity(waiting.len());
    let mut failure = None;
    for event in waiting {
        let message =
            BusMessage::new(event.payload).with_header(MSG_ID_HEADER, event.msg_id.clone());
        match bus.publish_durable(&event.subject, message).await {
            Ok(()) => published.push(event.msg_id),
            Err(error) => {
                failure = Some(format!("publishing {}: {error}", event.subject));
                break;
            }
        }
    }
    store
        .remove_outbox(&published)
        .await
        .map_err(|error| error.to_string())?;
    match failure {
        Some(failure) => Err(failure),
        None => Ok(published.len()),
    }
}
