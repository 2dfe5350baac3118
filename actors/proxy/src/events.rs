//! Decision events of the data plane (`secret_used`, `egress_blocked`) and the sink they go to.
//! Events carry sandbox ids, secret names, hosts, methods and paths with tokens redacted to
//! `{SECRET_NAME}` — never a value, never a token. The sink must never block the data plane.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

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

/// Sends events into a bounded channel, fairly: every sandbox (and, apart, every event without
/// one) has its own bounded queue, and a pump thread moves events into the channel round robin
/// across queues. A sandbox that floods fills only its own queue — its excess events are dropped
/// and counted — so it can never make another sandbox's audit events drop (issue 11 item 6).
/// `emit` never blocks the data plane.
#[derive(Debug)]
pub struct ChannelSink {
    queue: Arc<FairQueue>,
}

#[derive(Debug)]
struct FairQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
    per_sandbox: usize,
    dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct QueueState {
    queues: HashMap<Option<SandboxId>, VecDeque<ProxyEvent>>,
    /// Queues with events, in the order the pump serves them.
    turn: VecDeque<Option<SandboxId>>,
    closed: bool,
}

impl ProxyEvent {
    /// The sandbox the event is about (`None`: an unknown source).
    pub fn sandbox_id(&self) -> Option<SandboxId> {
        match self {
            ProxyEvent::SecretUsed { sandbox_id, .. } => Some(*sandbox_id),
            ProxyEvent::EgressBlocked { sandbox_id, .. } => *sandbox_id,
        }
    }
}

impl ChannelSink {
    /// A sink and the receiver the control shell drains: a channel of `capacity` events, and
    /// up to `capacity` (at most 1024) queued per sandbox.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<ProxyEvent>) {
        Self::with_limits(capacity, capacity.clamp(1, 1024))
    }

    /// A sink with an explicit per-sandbox queue bound.
    pub fn with_limits(capacity: usize, per_sandbox: usize) -> (Self, mpsc::Receiver<ProxyEvent>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let queue = Arc::new(FairQueue {
            state: Mutex::new(QueueState::default()),
            ready: Condvar::new(),
            per_sandbox: per_sandbox.max(1),
            dropped: AtomicU64::new(0),
        });
        let pumped = Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name("osb-proxy-events".into())
            .spawn(move || pump(&pumped, &sender));
        if let Err(error) = spawned {
            tracing::error!(%error, "proxy event pump could not start; events will be dropped");
        }
        (Self { queue }, receiver)
    }

    /// Events dropped because a sandbox's queue was full or the receiver is gone.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(Ordering::Relaxed)
    }
}

/// Moves events into the channel, one per queue in turn, until the sink is dropped (after the
/// queued events) or the receiver is.
fn pump(queue: &FairQueue, sender: &mpsc::Sender<ProxyEvent>) {
    loop {
        let event = {
            let mut state = queue.lock();
            loop {
                if let Some(key) = state.turn.pop_front() {
                    let (event, more) = match state.queues.get_mut(&key) {
                        Some(events) => (events.pop_front(), !events.is_empty()),
                        None => (None, false),
                    };
                    if more {
                        state.turn.push_back(key);
                    } else {
                        state.queues.remove(&key);
                    }
                    if let Some(event) = event {
                        break event;
                    }
                    continue;
                }
                if state.closed {
                    return;
                }
                state = queue
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        if sender.blocking_send(event).is_err() {
            let mut state = queue.lock();
            state.closed = true;
            let left: usize = state.queues.values().map(VecDeque::len).sum();
            state.queues.clear();
            state.turn.clear();
            queue.dropped.fetch_add(left as u64 + 1, Ordering::Relaxed);
            return;
        }
    }
}

impl FairQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventSink for ChannelSink {
    fn emit(&self, event: ProxyEvent) {
        let key = event.sandbox_id();
        let mut state = self.queue.lock();
        if state.closed {
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let per_sandbox = self.queue.per_sandbox;
        let events = state.queues.entry(key).or_default();
        if events.len() >= per_sandbox {
            drop(state);
            let dropped = self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            if dropped.is_power_of_two() {
                tracing::warn!(sandbox_id = ?key, dropped = dropped + 1, "proxy events dropped: this sandbox's queue is full");
            }
            return;
        }
        let was_empty = events.is_empty();
        events.push_back(event);
        if was_empty {
            state.turn.push_back(key);
        }
        drop(state);
        self.queue.ready.notify_one();
    }
}

impl Drop for ChannelSink {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.ready.notify_one();
    }
}
