//! Decision events of the data plane (`secret_used`, `egress_blocked`) and the sink they go to.
//! Events carry sandbox ids, secret names, hosts, methods and paths with tokens redacted to
//! `{SECRET_NAME}` — never a value, never a token. The sink must never block the data plane.

use std::fmt;
use std::net::IpAddr;

use osb_proto::{ErrorCode, SandboxId};
use serde::Serialize;
use tokio::sync::mpsc;

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProxyEvent {
    /// Tokens of these secrets were replaced by their values in a request to `host`.
    SecretUsed {
        sandbox_id: SandboxId,
        secret_names: Vec<String>,
        host: String,
        method: String,
        /// Path without query, tokens redacted.
        path: String,
    },
    /// A request or connection was refused.
    EgressBlocked {
        sandbox_id: Option<SandboxId>,
        source_ip: IpAddr,
        host: Option<String>,
        method: Option<String>,
        path: Option<String>,
        code: ErrorCode,
        secret: Option<String>,
        reason: String,
    },
}

/// Where events go. Implementations must return quickly.
pub trait EventSink: Send + Sync + fmt::Debug {
    fn emit(&self, event: ProxyEvent);
}

/// Drops every event (for tools and benchmarks).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: ProxyEvent) {}
}

/// Sends events into a bounded channel; when full, the event is dropped and counted.
#[derive(Debug)]
pub struct ChannelSink {
    sender: mpsc::Sender<ProxyEvent>,
    dropped: std::sync::atomic::AtomicU64,
}

impl ChannelSink {
    /// A sink and the receiver the control shell drains.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<ProxyEvent>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        (
            Self {
                sender,
                dropped: Default::default(),
            },
            receiver,
        )
    }

    /// Events dropped because the receiver lagged.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl EventSink for ChannelSink {
    fn emit(&self, event: ProxyEvent) {
        if self.sender.try_send(event).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!("proxy event dropped: receiver lagging or closed");
        }
    }
}
