//! The bus loops around the placement core: a worker publishes heartbeats on an interval; the
//! control plane's `PlacementService` subscribes to all heartbeats, keeps the core current,
//! checks for silent workers on an interval, and reports joins and losses (as `WorkerChange`s
//! to its owner and as `osb.worker.<id>.joined|lost` events on the bus).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use osb_bus::{Bus, BusError, BusMessage, Envelope, ALL_WORKER_HEARTBEATS};
use osb_proto::{WorkerId, WorkerName};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::core::{PlacementCore, PlacementError, PlacementRequest};
use crate::heartbeat::{WorkerHeartbeat, HEARTBEAT_KIND};

/// A change in the set of live workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerChange {
    /// A worker heartbeated for the first time, or again after being lost.
    Joined(WorkerId),
    /// A worker stopped heartbeating: its sandboxes must be reported.
    Lost(WorkerId),
}

/// Publishes `heartbeat(sequence)` every `interval` until the returned task is aborted.
pub fn publish_heartbeats(
    bus: Arc<dyn Bus>,
    interval: Duration,
    heartbeat: impl Fn(u64) -> WorkerHeartbeat + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        let mut sequence = 0u64;
        loop {
            ticker.tick().await;
            let beat = heartbeat(sequence);
            let subject = osb_bus::worker_heartbeat(beat.worker_id);
            match Envelope::new(HEARTBEAT_KIND, beat, None).to_bytes() {
                Ok(bytes) => {
                    if let Err(error) = bus.publish(subject.as_str(), BusMessage::new(bytes)).await
                    {
                        warn!(error = %error, "heartbeat not published");
                    }
                }
                Err(error) => warn!(error = %error, "heartbeat not encoded"),
            }
            sequence += 1;
        }
    })
}

/// The control plane's placement.
#[derive(Debug, Clone)]
pub struct PlacementService {
    core: Arc<Mutex<PlacementCore>>,
    epoch: Instant,
    task: Arc<JoinHandle<()>>,
}

impl Drop for PlacementService {
    fn drop(&mut self) {
        // The last handle stops the loop.
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl PlacementService {
    /// Subscribes to heartbeats and starts the loop. Workers silent for `lost_after` are
    /// reported lost; silence is checked every `check_every`.
    pub async fn start(
        bus: Arc<dyn Bus>,
        lost_after: Duration,
        check_every: Duration,
    ) -> Result<(Self, mpsc::Receiver<WorkerChange>), BusError> {
        let mut heartbeats = bus.subscribe(ALL_WORKER_HEARTBEATS).await?;
        bus.flush().await?;
        let lost_after_ms = u64::try_from(lost_after.as_millis()).unwrap_or(u64::MAX);
        let core = Arc::new(Mutex::new(PlacementCore::new(lost_after_ms)));
        let epoch = Instant::now();
        let (changes, receiver) = mpsc::channel(256);
        let loop_core = core.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(check_every);
            loop {
                let now_ms = elapsed_ms(epoch);
                let mut found: Vec<WorkerChange> = Vec::new();
                tokio::select! {
                    message = heartbeats.next() => {
                        let Some(message) = message else { break };
                        match Envelope::<WorkerHeartbeat>::from_bytes(&message.payload) {
                            Ok(envelope) => {
                                let id = envelope.payload.worker_id;
                                let revived = loop_core
                                    .lock()
                                    .map(|mut core| core.observe(envelope.payload, now_ms))
                                    .unwrap_or(false);
                                if revived {
                                    found.push(WorkerChange::Joined(id));
                                }
                            }
                            Err(error) => warn!(subject = %message.subject, error = %error, "ignored a malformed heartbeat"),
                        }
                    }
                    _ = ticker.tick() => {
                        let lost = loop_core.lock().map(|mut core| core.expire(now_ms)).unwrap_or_default();
                        found.extend(lost.into_iter().map(WorkerChange::Lost));
                    }
                }
                for change in found {
                    let (worker, event) = match change {
                        WorkerChange::Joined(id) => (id, "joined"),
                        WorkerChange::Lost(id) => (id, "lost"),
                    };
                    info!(worker = %worker, event, "worker membership changed");
                    if let Ok(subject) = osb_bus::worker_event(worker, event) {
                        let _ = bus.publish(subject.as_str(), BusMessage::new("{}")).await;
                    }
                    if changes.send(change).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok((
            Self {
                core,
                epoch,
                task: Arc::new(task),
            },
            receiver,
        ))
    }

    /// Chooses a live worker with room and reserves it; returns its id, name and gRPC address.
    pub fn place(
        &self,
        request: PlacementRequest,
    ) -> Result<(WorkerId, WorkerName, String), PlacementError> {
        let now_ms = elapsed_ms(self.epoch);
        let mut core = self.core.lock().map_err(|_| PlacementError::NoLiveWorker)?;
        let id = core.place(request, now_ms)?;
        let view = core.worker(id).ok_or(PlacementError::NoLiveWorker)?;
        Ok((
            id,
            view.heartbeat.name.clone(),
            view.heartbeat.grpc_addr.clone(),
        ))
    }

    /// The id and gRPC address of the live worker named `name` (its certificate name).
    pub fn live_worker_named(&self, name: &WorkerName) -> Option<(WorkerId, String)> {
        let now_ms = elapsed_ms(self.epoch);
        let mut core = self.core.lock().ok()?;
        core.expire(now_ms);
        // A restarted worker heartbeats under a new id while its old id is not yet lost: the
        // freshest heartbeat is the process that runs now.
        let found = core
            .workers()
            .filter(|view| {
                view.heartbeat.name == *name && view.status == crate::core::WorkerStatus::Live
            })
            .max_by_key(|view| view.last_seen_ms)
            .map(|view| (view.heartbeat.worker_id, view.heartbeat.grpc_addr.clone()));
        found
    }

    /// The name of a worker placement has seen (live or lost).
    pub fn name_of(&self, id: WorkerId) -> Option<WorkerName> {
        self.core
            .lock()
            .ok()?
            .worker(id)
            .map(|view| view.heartbeat.name.clone())
    }

    /// Names of the live workers right now.
    pub fn live_worker_names(&self) -> Vec<WorkerName> {
        self.core
            .lock()
            .map(|core| {
                core.workers()
                    .filter(|view| view.status == crate::core::WorkerStatus::Live)
                    .map(|view| view.heartbeat.name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every worker placement has seen (live or lost), with the time since its last
    /// heartbeat, by id.
    pub fn worker_views(&self) -> Vec<(crate::core::WorkerView, Duration)> {
        let now_ms = elapsed_ms(self.epoch);
        let Ok(mut core) = self.core.lock() else {
            return Vec::new();
        };
        core.expire(now_ms);
        core.workers()
            .map(|view| {
                let age = Duration::from_millis(now_ms.saturating_sub(view.last_seen_ms));
                (view.clone(), age)
            })
            .collect()
    }

    /// Live workers right now.
    pub fn live_workers(&self) -> Vec<WorkerId> {
        self.core
            .lock()
            .map(|core| {
                core.workers()
                    .filter(|view| view.status == crate::core::WorkerStatus::Live)
                    .map(|view| view.heartbeat.worker_id)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn elapsed_ms(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}
