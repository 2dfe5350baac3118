//! `NatsBus`: the bus over a NATS server (async-nats). Core NATS for commands (request/reply
//! with timeouts) and fan-out; JetStream for durable events and worker commands. The stream
//! layout (ADR 0006, ADR 0020): `OSB_EVENTS` stores `osb.sandbox.>`, `osb.project.>` and
//! `osb.saga.>` for 7 days (bounded in bytes); `OSB_COMMANDS` is a work queue of
//! `osb.cmd.worker.>` only (saga steps sent to workers, `nats_commands`). No stream captures
//! other command subjects, because a stream answers a request's reply inbox with its own
//! publish-ack: request/reply never goes to a worker's command subjects.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::{Client, HeaderMap};
use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::bus_trait::{Bus, BusError, Subscription, SUBSCRIPTION_BUFFER};
use crate::command::{CommandFeed, CommandSettings};
use crate::message::{BusMessage, Delivered, Headers};
use crate::pattern::{validate_pattern, validate_subject};
use crate::replay::{validate_stored_pattern, EventFeed, ReplayFrom};
use crate::subject::{ALL_PROJECT_EVENTS, ALL_SAGA_EVENTS, ALL_SANDBOX_EVENTS};

/// Name of the durable event stream.
pub const EVENTS_STREAM: &str = "OSB_EVENTS";
/// Subjects the event stream stores.
pub const EVENTS_STREAM_SUBJECTS: &[&str] =
    &[ALL_SANDBOX_EVENTS, ALL_PROJECT_EVENTS, ALL_SAGA_EVENTS];
const EVENTS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
const EVENTS_MAX_BYTES: i64 = 1024 * 1024 * 1024;
/// JetStream de-duplication window for `Nats-Msg-Id`.
pub(crate) const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The bus over NATS.
#[derive(Debug, Clone)]
pub struct NatsBus {
    client: Client,
    jetstream: jetstream::Context,
    commands: CommandSettings,
}

impl NatsBus {
    /// Connects to `url` (e.g. `nats://127.0.0.1:4222`).
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("opensandbox")
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|error| BusError::Unreachable {
                url: url.to_owned(),
                reason: error.to_string(),
            })?;
        let jetstream = jetstream::new(client.clone());
        Ok(Self {
            client,
            jetstream,
            commands: CommandSettings::default(),
        })
    }

    /// The same connection with another command space or ack wait (tests scope their commands
    /// so platforms sharing one NATS server never take each other's). Call `ensure_streams`
    /// afterwards.
    pub fn with_command_settings(mut self, settings: CommandSettings) -> Self {
        self.commands = settings;
        self
    }

    /// Where this bus's worker commands live.
    pub fn command_settings(&self) -> &CommandSettings {
        &self.commands
    }

    /// Creates (or updates) the durable event stream and the command stream. Idempotent.
    pub async fn ensure_streams(&self) -> Result<(), BusError> {
        let config = jetstream::stream::Config {
            name: EVENTS_STREAM.to_owned(),
            subjects: EVENTS_STREAM_SUBJECTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            max_age: EVENTS_MAX_AGE,
            max_bytes: EVENTS_MAX_BYTES,
            duplicate_window: DUPLICATE_WINDOW,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        self.jetstream
            .get_or_create_stream(config)
            .await
            .map_err(|error| nats_error("stream setup", error))?;
        crate::nats_commands::ensure_command_stream(&self.jetstream, &self.commands).await
    }

    /// Deletes this bus's command stream (tests remove their scoped stream when done).
    pub async fn delete_command_stream(&self) -> Result<(), BusError> {
        self.jetstream
            .delete_stream(self.commands.space.stream())
            .await
            .map_err(|error| nats_error("command stream removal", error))?;
        Ok(())
    }

    /// The JetStream context, for consumers that replay stored events.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    fn forward(subscriber: async_nats::Subscriber) -> Subscription {
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_BUFFER);
        tokio::spawn(async move {
            let mut subscriber = subscriber;
            loop {
                tokio::select! {
                    // The Subscription was dropped: stop, which unsubscribes at once.
                    () = sender.closed() => break,
                    next = subscriber.next() => match next {
                        Some(message) => {
                            if sender.send(delivered(message)).await.is_err() {
                                break;
                            }
                        }
                        None => break,
                    },
                }
            }
            let _ = subscriber.unsubscribe().await;
        });
        Subscription { receiver }
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, subject: &str, message: BusMessage) -> Result<(), BusError> {
        validate_subject(subject)?;
        self.client
            .publish_with_headers(
                subject.to_owned(),
                to_header_map(&message.headers),
                message.payload,
            )
            .await
            .map_err(|error| nats_error("publish", error))
    }

    async fn publish_durable(&self, subject: &str, message: BusMessage) -> Result<(), BusError> {
        validate_subject(subject)?;
        let ack = self
            .jetstream
            .publish_with_headers(
                subject.to_owned(),
                to_header_map(&message.headers),
                message.payload,
            )
            .await
            .map_err(|error| nats_error("durable publish", error))?;
        ack.await
            .map_err(|error| nats_error("durable publish ack", error))?;
        Ok(())
    }

    async fn subscribe(&self, pattern: &str) -> Result<Subscription, BusError> {
        validate_pattern(pattern)?;
        let subscriber = self
            .client
            .subscribe(pattern.to_owned())
            .await
            .map_err(|error| nats_error("subscribe", error))?;
        Ok(Self::forward(subscriber))
    }

    async fn queue_subscribe(&self, pattern: &str, group: &str) -> Result<Subscription, BusError> {
        validate_pattern(pattern)?;
        let subscriber = self
            .client
            .queue_subscribe(pattern.to_owned(), group.to_owned())
            .await
            .map_err(|error| nats_error("queue subscribe", error))?;
        Ok(Self::forward(subscriber))
    }

    async fn request(
        &self,
        subject: &str,
        message: BusMessage,
        timeout: Duration,
    ) -> Result<Delivered, BusError> {
        validate_subject(subject)?;
        let request = async_nats::Request::new()
            .headers(to_header_map(&message.headers))
            .payload(message.payload)
            .timeout(Some(timeout));
        match self.client.send_request(subject.to_owned(), request).await {
            Ok(reply) => Ok(delivered(reply)),
            Err(error) => Err(match error.kind() {
                async_nats::RequestErrorKind::NoResponders => BusError::NoResponders {
                    subject: subject.to_owned(),
                },
                async_nats::RequestErrorKind::TimedOut => BusError::TimedOut {
                    subject: subject.to_owned(),
                    timeout,
                },
                _ => nats_error("request", error),
            }),
        }
    }

    async fn flush(&self) -> Result<(), BusError> {
        self.client
            .flush()
            .await
            .map_err(|error| nats_error("flush", error))
    }

    async fn publish_command(
        &self,
        worker: &str,
        verb: &str,
        message: BusMessage,
        msg_id: &str,
    ) -> Result<(), BusError> {
        crate::nats_commands::publish_command(
            &self.jetstream,
            &self.commands,
            worker,
            verb,
            message,
            msg_id,
        )
        .await
    }

    async fn consume_commands(&self, worker: &str) -> Result<CommandFeed, BusError> {
        crate::nats_commands::consume_commands(&self.jetstream, &self.commands, worker).await
    }

    async fn follow_events(
        &self,
        pattern: Option<&str>,
        from: ReplayFrom,
    ) -> Result<EventFeed, BusError> {
        if let Some(pattern) = pattern {
            validate_stored_pattern(pattern)?;
        }
        crate::nats_replay::follow(&self.jetstream, pattern, from).await
    }
}

pub(crate) fn nats_error(operation: &'static str, error: impl std::fmt::Display) -> BusError {
    BusError::Nats {
        operation,
        reason: error.to_string(),
    }
}

pub(crate) fn to_header_map(headers: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(name.as_str(), value.as_str());
    }
    map
}

pub(crate) fn delivered(message: async_nats::Message) -> Delivered {
    let mut headers = Headers::new();
    if let Some(map) = &message.headers {
        for (name, values) in map.iter() {
            if let Some(value) = values.first() {
                headers.insert(name.to_string(), value.to_string());
            }
        }
    }
    Delivered {
        subject: message.subject.to_string(),
        reply: message.reply.map(|reply| reply.to_string()),
        headers,
        payload: message.payload,
    }
}
