//! Sandbox events and the sink they go to. The runtime reports `egress_blocked` (from its
//! resolver); the `VmActor` reports lifecycle changes. Publishing to NATS is the bus's job: a
//! sink implementation there maps `SandboxEvent::name()` to `osb.sandbox.<id>.<name>`. Events
//! carry names and hosts, never secret values and never tokens.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use osb_proto::{CheckpointId, SandboxId};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// What happened to a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum SandboxEventKind {
    /// The sandbox booted and accepts commands.
    Started,
    /// The sandbox's processes were stopped (or it was destroyed).
    Stopped,
    /// An operation failed; `reason` is the error's message (never a value).
    Failed { reason: String },
    /// A checkpoint was written.
    Checkpointed {
        #[serde(rename = "checkpointId")]
        checkpoint_id: CheckpointId,
    },
    /// The sandbox was restored in place from a checkpoint.
    Restored {
        #[serde(rename = "checkpointId")]
        checkpoint_id: CheckpointId,
    },
    /// The resolver refused a name that is not on the sandbox's allowlist.
    EgressBlocked { host: String, via: String },
}

/// One event about one sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxEvent {
    /// Payload format version.
    pub version: u32,
    /// The sandbox.
    #[serde(rename = "sandboxID")]
    pub sandbox_id: SandboxId,
    /// Unix time in milliseconds.
    pub at_unix_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: SandboxEventKind,
}

impl SandboxEvent {
    /// An event stamped now.
    pub fn now(sandbox_id: SandboxId, kind: SandboxEventKind) -> Self {
        let at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            version: 1,
            sandbox_id,
            at_unix_ms,
            kind,
        }
    }

    /// The past-tense event name used as the last NATS subject token.
    pub fn name(&self) -> &'static str {
        match self.kind {
            SandboxEventKind::Started => "started",
            SandboxEventKind::Stopped => "stopped",
            SandboxEventKind::Failed { .. } => "failed",
            SandboxEventKind::Checkpointed { .. } => "checkpointed",
            SandboxEventKind::Restored { .. } => "restored",
            SandboxEventKind::EgressBlocked { .. } => "egress_blocked",
        }
    }
}

/// Where events go. Implementations must not block: queue and return.
pub trait EventSink: Send + Sync + std::fmt::Debug + 'static {
    /// Hands one event over for publishing.
    fn publish(&self, event: SandboxEvent);
}

/// A sink that logs events with `tracing` (the default until the bus is wired).
#[derive(Debug, Default)]
pub struct LogSink;

impl EventSink for LogSink {
    fn publish(&self, event: SandboxEvent) {
        tracing::info!(sandbox_id = %event.sandbox_id, event = event.name(), "sandbox event");
    }
}

/// A sink that keeps every event and lets tests await the next one.
#[derive(Debug)]
pub struct RecordingSink {
    events: Mutex<Vec<SandboxEvent>>,
    sender: broadcast::Sender<SandboxEvent>,
}

impl Default for RecordingSink {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(1024);
        Self {
            events: Mutex::new(Vec::new()),
            sender,
        }
    }
}

impl RecordingSink {
    /// Every event so far.
    pub fn events(&self) -> Vec<SandboxEvent> {
        self.events
            .lock()
            .map(|guard| guard.clone())
            .unwrap_or_default()
    }

    /// A receiver of events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SandboxEvent> {
        self.sender.subscribe()
    }
}

impl EventSink for RecordingSink {
    fn publish(&self, event: SandboxEvent) {
        if let Ok(mut guard) = self.events.lock() {
            guard.push(event.clone());
        }
        // No subscriber is fine: the event is still recorded.
        let _ = self.sender.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_their_name_and_camel_case_fields() {
        let id = SandboxId::new();
        let event = SandboxEvent::now(
            id,
            SandboxEventKind::EgressBlocked {
                host: "evil.example".into(),
                via: "dns".into(),
            },
        );
        assert_eq!(event.name(), "egress_blocked");
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "egress_blocked");
        assert_eq!(json["sandboxID"], id.to_string());
        assert_eq!(json["host"], "evil.example");
        assert_eq!(json["version"], 1);
    }

    #[test]
    fn recording_sink_records_and_broadcasts() {
        let sink = RecordingSink::default();
        let mut receiver = sink.subscribe();
        sink.publish(SandboxEvent::now(
            SandboxId::new(),
            SandboxEventKind::Started,
        ));
        assert_eq!(sink.events().len(), 1);
        assert_eq!(receiver.try_recv().map(|e| e.name()).ok(), Some("started"));
    }
}
