//! `CommandFeed`: a worker's stream of commands, each to be acknowledged explicitly once its
//! outcome is published. A command that is never acknowledged — its consumer died, or it took
//! longer than the ack wait without reporting progress — is delivered again; that is the
//! whole delivery guarantee, and the worker's record makes the redelivery harmless.

use async_trait::async_trait;

use crate::bus_trait::BusError;
use crate::message::Delivered;

/// Acknowledges one delivery.
#[async_trait]
pub trait CommandAck: Send + Sync {
    /// Done with it: it is not delivered again.
    async fn ack(&self) -> Result<(), BusError>;
    /// Still working on it: restarts its ack wait.
    async fn in_progress(&self) -> Result<(), BusError>;
}

/// Where a feed's deliveries come from (one implementation per bus).
#[async_trait]
pub trait CommandSource: Send {
    /// The next delivery, or `None` once the bus is gone.
    async fn next(&mut self) -> Option<Result<CommandDelivery, BusError>>;
}

/// One delivered command.
pub struct CommandDelivery {
    pub message: Delivered,
    /// How many times it has been delivered (1 the first time).
    pub delivery_count: u64,
    pub(crate) acker: Box<dyn CommandAck>,
}

impl std::fmt::Debug for CommandDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandDelivery")
            .field("subject", &self.message.subject)
            .field("delivery_count", &self.delivery_count)
            .finish_non_exhaustive()
    }
}

impl CommandDelivery {
    /// A delivery acknowledged through `acker` (bus implementations and test wrappers).
    pub fn new(message: Delivered, delivery_count: u64, acker: Box<dyn CommandAck>) -> Self {
        Self {
            message,
            delivery_count,
            acker,
        }
    }

    /// Acknowledges it: call only after its outcome is published.
    pub async fn ack(&self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Reports that work on it goes on (restarts the ack wait).
    pub async fn in_progress(&self) -> Result<(), BusError> {
        self.acker.in_progress().await
    }

    /// Splits it into the message and its acknowledger (for wrappers that pass it on).
    pub fn into_parts(self) -> (Delivered, u64, Box<dyn CommandAck>) {
        (self.message, self.delivery_count, self.acker)
    }
}

/// A worker's commands. Dropping it stops consuming; what it held unacknowledged is
/// delivered again.
pub struct CommandFeed {
    source: Box<dyn CommandSource>,
}

impl std::fmt::Debug for CommandFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandFeed").finish_non_exhaustive()
    }
}

impl CommandFeed {
    /// A feed over `source`.
    pub fn new(source: Box<dyn CommandSource>) -> Self {
        Self { source }
    }

    /// The next command, or `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Result<CommandDelivery, BusError>> {
        self.source.next().await
    }
}
