//! `InProcessBus`: the bus of a single `osbd up` process, with the same routing semantics as
//! NATS core (wildcards, queue groups with one delivery per group, request/reply with inboxes,
//! "no responders" when nobody listens). Events on the durable stream's subjects also go into
//! a bounded ring (`EventRing`) that `follow_events` replays from; nothing else is kept, and
//! the ring lives only as long as the process: durability comes from the store. Worker
//! commands go through per-worker work queues (`in_process_commands`) with JetStream's
//! redelivery and de-duplication rules.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tracing::warn;

use crate::bus_trait::{Bus, BusError, Subscription, SUBSCRIPTION_BUFFER};
use crate::command::{CommandFeed, CommandSettings};
use crate::event_ring::{EventRing, DEFAULT_EVENT_RING_CAPACITY};
use crate::in_process_commands::CommandQueues;
use crate::message::{BusMessage, Delivered};
use crate::nats::EVENTS_STREAM_SUBJECTS;
use crate::pattern::{matches, validate_pattern, validate_subject};
use crate::replay::{validate_stored_pattern, EventFeed, ReplayFrom};

#[derive(Debug)]
struct Entry {
    pattern: String,
    group: Option<String>,
    sender: mpsc::Sender<Delivered>,
}

/// The in-process bus. Clones share the same routing table and event ring.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    entries: Arc<Mutex<Vec<Entry>>>,
    round_robin: Arc<AtomicU64>,
    events: EventRing,
    commands: CommandQueues,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::with_event_capacity(DEFAULT_EVENT_RING_CAPACITY)
    }
}

impl InProcessBus {
    /// An empty bus whose event ring holds the last 10 000 events.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty bus whose event ring holds the last `capacity` events (at least one).
    pub fn with_event_capacity(capacity: usize) -> Self {
        Self {
            entries: Arc::default(),
            round_robin: Arc::default(),
            events: EventRing::new(capacity),
            commands: CommandQueues::new(CommandSettings::default()),
        }
    }

    /// The same bus with other command delivery settings (tests shorten the ack wait).
    pub fn with_command_settings(mut self, settings: CommandSettings) -> Self {
        self.commands = CommandQueues::new(settings);
        self
    }

    fn add(&self, pattern: &str, group: Option<&str>) -> Result<Subscription, BusError> {
        validate_pattern(pattern)?;
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let mut entries = self.entries.lock().map_err(|_| BusError::Closed)?;
        entries.push(Entry {
            pattern: pattern.to_owned(),
            group: group.map(str::to_owned),
            sender,
        });
        Ok(Subscription { receiver })
    }

    /// Routes one message; returns how many subscribers received it.
    fn route(&self, delivered: Delivered) -> Result<usize, BusError> {
        let mut entries = self.entries.lock().map_err(|_| BusError::Closed)?;
        // Subscribers whose receiver was dropped are unsubscribed.
        entries.retain(|entry| !entry.sender.is_closed());
        let mut targets: Vec<&Entry> = Vec::new();
        let mut groups: Vec<(&str, Vec<&Entry>)> = Vec::new();
        for entry in entries
            .iter()
            .filter(|e| matches(&e.pattern, &delivered.subject))
        {
            match entry.group.as_deref() {
                None => targets.push(entry),
                Some(group) => match groups.iter_mut().find(|(name, _)| *name == group) {
                    Some((_, members)) => members.push(entry),
                    None => groups.push((group, vec![entry])),
                },
            }
        }
        for (_, members) in &groups {
            let turn = self.round_robin.fetch_add(1, Ordering::Relaxed);
            let index = usize::try_from(turn % members.len() as u64).unwrap_or(0);
            targets.push(members[index]);
        }
        let mut delivered_to = 0;
        for entry in targets {
            match entry.sender.try_send(delivered.clone()) {
                Ok(()) => delivered_to += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn!(subject = %delivered.subject, pattern = %entry.pattern, "slow subscriber; message dropped");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        Ok(delivered_to)
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, subject: &str, message: BusMessage) -> Result<(), BusError> {
        validate_subject(subject)?;
        let delivered = Delivered {
            subject: subject.to_owned(),
            reply: None,
            headers: message.headers,
            payload: message.payload,
        };
        // Like JetStream, the ring stores whatever is published on the stream's subjects.
        if EVENTS_STREAM_SUBJECTS
            .iter()
            .any(|pattern| matches(pattern, subject))
        {
            self.events.append(delivered.clone());
        }
        self.route(delivered)?;
        Ok(())
    }

    async fn publish_durable(&self, subject: &str, message: BusMessage) -> Result<(), BusError> {
        self.publish(subject, message).await
    }

    async fn subscribe(&self, pattern: &str) -> Result<Subscription, BusError> {
        self.add(pattern, None)
    }

    async fn queue_subscribe(&self, pattern: &str, group: &str) -> Result<Subscription, BusError> {
        self.add(pattern, Some(group))
    }

    async fn request(
        &self,
        subject: &str,
        message: BusMessage,
        timeout: Duration,
    ) -> Result<Delivered, BusError> {
        validate_subject(subject)?;
        let inbox = format!("_INBOX.{}", uuid::Uuid::new_v4().simple());
        let mut replies = self.add(&inbox, None)?;
        let receivers = self.route(Delivered {
            subject: subject.to_owned(),
            reply: Some(inbox),
            headers: message.headers,
            payload: message.payload,
        })?;
        if receivers == 0 {
            return Err(BusError::NoResponders {
                subject: subject.to_owned(),
            });
        }
        replies
            .next_within(timeout)
            .await
            .ok_or_else(|| BusError::TimedOut {
                subject: subject.to_owned(),
                timeout,
            })
    }

    async fn flush(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn publish_command(
        &self,
        worker: &str,
        verb: &str,
        message: BusMessage,
        msg_id: &str,
    ) -> Result<(), BusError> {
        self.commands.publish(worker, verb, message, msg_id)
    }

    async fn consume_commands(&self, worker: &str) -> Result<CommandFeed, BusError> {
        self.commands.consume(worker)
    }

    async fn follow_events(
        &self,
        pattern: Option<&str>,
        from: ReplayFrom,
    ) -> Result<EventFeed, BusError> {
        if let Some(pattern) = pattern {
            validate_stored_pattern(pattern)?;
        }
        let (sender, feed) = EventFeed::channel();
        self.events.follow(pattern.map(str::to_owned), from, sender);
        Ok(feed)
    }
}
