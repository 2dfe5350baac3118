//! Forwards a worker's data-plane decisions to the bus: the proxy's `secret_used` and
//! `egress_blocked` and the sandbox resolver's refused names become
//! `osb.sandbox.<id>.secret_used|egress_blocked` events (names, hosts, methods, redacted paths —
//! never values, never tokens). Refusals for an unknown source have no sandbox and go to
//! `osb.worker.<id>.egress_blocked`. Both sinks hand events to a bounded channel and never
//! block the data plane; a full channel drops events (counted by the proxy).

use std::sync::Arc;

use osb_bus::{sandbox_event, worker_event, Bus, BusMessage, Envelope};
use osb_proto::WorkerId;
use osb_proxy::ProxyEvent;
use osb_vm::{SandboxEvent, SandboxEventKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The runtime's event sink: keeps only resolver refusals (lifecycle events come from the
/// control plane's sagas, which know the org and the outcome).
#[derive(Debug)]
pub struct RuntimeEventForwarder(mpsc::Sender<SandboxEvent>);

impl osb_vm::EventSink for RuntimeEventForwarder {
    fn publish(&self, event: SandboxEvent) {
        if matches!(event.kind, SandboxEventKind::EgressBlocked { .. }) {
            let _ = self.0.try_send(event);
        }
    }
}

/// Starts the forwarding task; returns the runtime sink and the task.
pub fn forward_events(
    bus: Arc<dyn Bus>,
    worker: WorkerId,
    mut proxy_events: mpsc::Receiver<ProxyEvent>,
) -> (Arc<RuntimeEventForwarder>, JoinHandle<()>) {
    let (sender, mut runtime_events) = mpsc::channel::<SandboxEvent>(1024);
    let task = tokio::spawn(async move {
        loop {
            let (subject, kind, payload) = tokio::select! {
                Some(event) = proxy_events.recv() => {
                    let (sandbox, name) = match &event {
                        ProxyEvent::SecretUsed { sandbox_id, .. } => (Some(*sandbox_id), "secret_used"),
                        ProxyEvent::EgressBlocked { sandbox_id, .. } => (*sandbox_id, "egress_blocked"),
                    };
                    let subject = match sandbox {
                        Some(id) => sandbox_event(id, name),
                        None => worker_event(worker, name),
                    };
                    (subject, format!("proxy.{name}"), serde_json::to_value(&event))
                }
                Some(event) = runtime_events.recv() => {
                    (sandbox_event(event.sandbox_id, event.name()), "resolver.egress_blocked".to_owned(), serde_json::to_value(&event))
                }
                else => break,
            };
            let (Ok(subject), Ok(payload)) = (subject, payload) else {
                continue;
            };
            let Ok(bytes) = Envelope::new(kind, payload, None).to_bytes() else {
                continue;
            };
            if let Err(error) = bus.publish(subject.as_str(), BusMessage::new(bytes)).await {
                tracing::debug!(%error, "data-plane event not published");
            }
        }
    });
    (Arc::new(RuntimeEventForwarder(sender)), task)
}
