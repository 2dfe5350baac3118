//! The `Bus` trait: publish, subscribe (optionally in a queue group), request/reply with a
//! timeout, durable event publishing, and following the durable event stream from a point in
//! its history (replay, then live). Two implementations share one contract test suite:
//! `NatsBus` (the cluster) and `InProcessBus` (`osbd up` without `NATS_URL`).

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::command::CommandFeed;
use crate::message::{BusMessage, Delivered};
use crate::pattern::PatternError;
use crate::replay::{EventFeed, ReplayFrom};

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(transparent)]
    InvalidSubject(#[from] PatternError),
    #[error(transparent)]
    InvalidToken(#[from] crate::subject::SubjectError),
    #[error("no subscriber answers on {subject}: is the responsible process running?")]
    NoResponders { subject: String },
    #[error("no reply on {subject} within {timeout:?}")]
    TimedOut { subject: String, timeout: Duration },
    #[error("cannot reach NATS at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("NATS {operation} failed: {reason}")]
    Nats {
        operation: &'static str,
        reason: String,
    },
    #[error("the bus is closed")]
    Closed,
    #[error("{name}: {reason}")]
    InvalidSetting { name: &'static str, reason: String },
}

/// A live subscription. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    pub(crate) receiver: mpsc::Receiver<Delivered>,
}

impl Subscription {
    /// The next message, or `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Delivered> {
        self.receiver.recv().await
    }

    /// The next message within `timeout`, or `None`.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<Delivered> {
        tokio::time::timeout(timeout, self.receiver.recv())
            .await
            .ok()
            .flatten()
    }
}

/// Messages a slow subscriber may have queued before new ones are dropped (NATS core does the
/// same for slow consumers; durability comes from JetStream and the saga log, not from here).
pub(crate) const SUBSCRIPTION_BUFFER: usize = 4096;

/// The bus.
#[async_trait]
pub trait Bus: Send + Sync + std::fmt::Debug {
    /// Publishes to a concrete subject (fire and forget).
    async fn publish(&self, subject: &str, message: BusMessage) -> Result<(), BusError>;

    /// Publishes an event that must be stored before this returns (JetStream ack on NATS; on
    /// the in-process bus the same as `publish`).
    async fn publish_durable(&self, subject: &str, message: BusMessage) -> Result<(), BusError>;

    /// Subscribes to a pattern; every subscriber gets every matching message.
    async fn subscribe(&self, pattern: &str) -> Result<Subscription, BusError>;

    /// Subscribes in a queue group: each message goes to one member of the group.
    async fn queue_subscribe(&self, pattern: &str, group: &str) -> Result<Subscription, BusError>;

    /// Sends a request and waits for the first reply.
    async fn request(
        &self,
        subject: &str,
        message: BusMessage,
        timeout: Duration,
    ) -> Result<Delivered, BusError>;

    /// Answers a request on its reply subject.
    async fn respond(&self, reply: &str, message: BusMessage) -> Result<(), BusError> {
        self.publish(reply, message).await
    }

    /// Waits until everything published so far has reached the server.
    async fn flush(&self) -> Result<(), BusError>;

    /// Publishes a command to `worker` durably (on NATS: into the command space's work-queue
    /// stream, acknowledged by the server before this returns), with `msg_id` as its
    /// `Nats-Msg-Id`: a re-publication of the same id inside the duplicate window is dropped.
    async fn publish_command(
        &self,
        worker: &str,
        verb: &str,
        message: BusMessage,
        msg_id: &str,
    ) -> Result<(), BusError>;

    /// Consumes `worker`'s commands through its durable consumer: each command goes to one
    /// consumer of that worker and is delivered again until acknowledged.
    async fn consume_commands(&self, worker: &str) -> Result<CommandFeed, BusError>;

    /// Follows the durable event stream (`osb.sandbox.>`, `osb.project.>`, `osb.saga.>`;
    /// only events matching `pattern` when given, which must lie inside those): every held
    /// event from `from` on, then live ones, in stream order, each with its sequence — no gap
    /// and no repeat between history and live. Events the caller asked for that the stream no
    /// longer holds are reported as a `Truncation`, never skipped silently.
    async fn follow_events(
        &self,
        pattern: Option<&str>,
        from: ReplayFrom,
    ) -> Result<EventFeed, BusError>;
}
