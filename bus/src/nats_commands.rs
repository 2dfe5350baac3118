//! Worker commands on NATS: a work-queue stream per command space (`OSB_COMMANDS` in
//! production) holds each command until the worker acknowledges it; each worker pulls its own
//! subjects through the durable consumer `worker-<name>` with explicit acknowledgement, so a
//! worker that dies mid-command gets it again after the ack wait, from whichever of its
//! processes pulls next. `Nats-Msg-Id` drops re-publications inside the duplicate window.

use async_nats::jetstream;
use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::AckKind;
use async_trait::async_trait;
use futures_util::StreamExt;

use crate::bus_trait::BusError;
use crate::command::{CommandAck, CommandDelivery, CommandFeed, CommandSettings, CommandSource};
use crate::headers::MSG_ID_HEADER;
use crate::message::BusMessage;
use crate::nats::{delivered, nats_error, to_header_map};

/// How long an idle command stays in the stream before it is dropped (its saga has long
/// timed out and unwound by then).
const COMMANDS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
const COMMANDS_MAX_BYTES: i64 = 256 * 1024 * 1024;

/// Creates the command space's work-queue stream (idempotent).
pub(crate) async fn ensure_command_stream(
    context: &jetstream::Context,
    settings: &CommandSettings,
) -> Result<(), BusError> {
    let config = jetstream::stream::Config {
        name: settings.space.stream().to_owned(),
        subjects: vec![settings.space.all_subjects()],
        retention: jetstream::stream::RetentionPolicy::WorkQueue,
        max_age: COMMANDS_MAX_AGE,
        max_bytes: COMMANDS_MAX_BYTES,
        duplicate_window: settings.duplicate_window,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    };
    context
        .get_or_create_stream(config)
        .await
        .map_err(|error| nats_error("command stream setup", error))?;
    Ok(())
}

/// Publishes one command and waits for the stream's acknowledgement.
pub(crate) async fn publish_command(
    context: &jetstream::Context,
    settings: &CommandSettings,
    worker: &str,
    verb: &str,
    message: BusMessage,
    msg_id: &str,
) -> Result<(), BusError> {
    let subject = settings.space.subject(worker, verb)?;
    let mut headers = message.headers;
    headers.insert(MSG_ID_HEADER.to_owned(), msg_id.to_owned());
    let ack = context
        .publish_with_headers(
            subject.as_str().to_owned(),
            to_header_map(&headers),
            message.payload,
        )
        .await
        .map_err(|error| nats_error("command publish", error))?;
    ack.await
        .map_err(|error| nats_error("command publish ack", error))?;
    Ok(())
}

/// Binds (creating it if needed) `worker`'s durable consumer and feeds its messages.
pub(crate) async fn consume_commands(
    context: &jetstream::Context,
    settings: &CommandSettings,
    worker: &str,
) -> Result<CommandFeed, BusError> {
    let stream = context
        .get_stream(settings.space.stream())
        .await
        .map_err(|error| {
            nats_error(
                "command stream lookup (is the stream set up? `connect_bus` does it)",
                error,
            )
        })?;
    let name = settings.space.consumer(worker)?;
    let consumer: jetstream::consumer::Consumer<pull::Config> = stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: settings.space.worker_filter(worker)?,
                ack_policy: AckPolicy::Explicit,
                ack_wait: settings.ack_wait,
                ..Default::default()
            },
        )
        .await
        .map_err(|error| nats_error("command consumer setup", error))?;
    let messages = consumer
        .stream()
        .max_messages_per_batch(16)
        .messages()
        .await
        .map_err(|error| nats_error("command consumer", error))?;
    Ok(CommandFeed::new(Box::new(PullSource { messages })))
}

struct PullSource {
    messages: pull::Stream,
}

#[async_trait]
impl CommandSource for PullSource {
    async fn next(&mut self) -> Option<Result<CommandDelivery, BusError>> {
        let message = match self.messages.next().await? {
            Ok(message) => message,
            Err(error) => return Some(Err(nats_error("command pull", error))),
        };
        let delivery_count = message.info().map(|info| info.delivered).unwrap_or(1);
        let delivery_count = u64::try_from(delivery_count).unwrap_or(1);
        let (inner, acker) = message.split();
        Some(Ok(CommandDelivery::new(
            delivered(inner),
            delivery_count,
            Box::new(PullAck { acker }),
        )))
    }
}

struct PullAck {
    acker: jetstream::message::Acker,
}

#[async_trait]
impl CommandAck for PullAck {
    async fn ack(&self) -> Result<(), BusError> {
        self.acker
            .ack()
            .await
            .map_err(|error| nats_error("command ack", error))
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        self.acker
            .ack_with(AckKind::Progress)
            .await
            .map_err(|error| nats_error("command progress", error))
    }
}
