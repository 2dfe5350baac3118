//! `follow_events` on NATS: one JetStream ordered consumer on the event stream, starting at the
//! requested sequence or time (or at "new" for live only). The consumer delivers history and
//! then live events as one ordered flow, each with its stream sequence, so there is no seam
//! between replay and live to stitch; it is ephemeral (gone when the reader goes) and needs no
//! acknowledgements. Where the request reaches before what the stream holds (limits removed
//! old events, or the stream was recreated) the feed starts with a `Truncation`.
//!
//! A slow reader is not dropped: the consumer pulls only as fast as the feed is read.

use async_nats::jetstream::consumer::{pull, DeliverPolicy, ReplayPolicy};
use async_nats::jetstream::stream::State;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use crate::bus_trait::BusError;
use crate::nats::{delivered, nats_error, EVENTS_STREAM};
use crate::replay::{EventFeed, FeedItem, ReplayFrom, StoredEvent, Truncation};

/// Consecutive consumer errors after which the feed ends (its reader reconnects and resumes).
const MAX_CONSECUTIVE_ERRORS: u32 = 5;

/// Where the consumer starts, and what the reader must be told first.
fn plan(from: ReplayFrom, state: &State) -> (DeliverPolicy, Option<Truncation>) {
    let first = state.first_sequence;
    let last = state.last_sequence;
    // An empty stream reports first = last + 1.
    let holds_any = state.messages > 0;
    match from {
        ReplayFrom::Live => (DeliverPolicy::New, None),
        ReplayFrom::AfterSequence(after) if after > last => (
            DeliverPolicy::All,
            Some(Truncation {
                resumes_at: holds_any.then_some(first),
                detail: format!("event {after} is not from this stream (it ends at {last}; was the stream recreated?): replaying everything it holds"),
            }),
        ),
        ReplayFrom::AfterSequence(after) if after + 1 < first => (
            DeliverPolicy::All,
            Some(Truncation {
                resumes_at: holds_any.then_some(first),
                detail: format!("events after {after} are no longer held: the oldest held is {first} (the stream keeps 7 days, bounded in bytes)"),
            }),
        ),
        ReplayFrom::AfterSequence(after) => (
            DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            None,
        ),
        ReplayFrom::Since(time) => {
            let first_time = from_offset(state.first_timestamp);
            let truncation = (first > 1 && holds_any && time < first_time).then(|| Truncation {
                resumes_at: Some(first),
                detail: format!(
                    "events before {} are no longer held (the stream keeps 7 days, bounded in bytes)",
                    first_time.to_rfc3339()
                ),
            });
            (
                DeliverPolicy::ByStartTime {
                    start_time: to_offset(time),
                },
                truncation,
            )
        }
    }
}

/// Starts an ordered consumer and a task that feeds its messages into an `EventFeed`.
pub(crate) async fn follow(
    jetstream: &async_nats::jetstream::Context,
    pattern: Option<&str>,
    from: ReplayFrom,
) -> Result<EventFeed, BusError> {
    let mut stream = jetstream.get_stream(EVENTS_STREAM).await.map_err(|error| {
        nats_error(
            "event stream lookup (is the stream set up? `connect_bus` does it)",
            error,
        )
    })?;
    let state = stream
        .info()
        .await
        .map_err(|error| nats_error("event stream info", error))?
        .state
        .clone();
    let (deliver_policy, truncation) = plan(from, &state);
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: pattern.unwrap_or_default().to_owned(),
            deliver_policy,
            replay_policy: ReplayPolicy::Instant,
            ..Default::default()
        })
        .await
        .map_err(|error| nats_error("event consumer setup", error))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| nats_error("event consumer", error))?;
    let (sender, feed) = EventFeed::channel();
    tokio::spawn(async move {
        if let Some(truncation) = truncation {
            if sender.send(FeedItem::Truncated(truncation)).await.is_err() {
                return;
            }
        }
        let mut errors = 0;
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                // The feed was dropped: stop, which deletes the ephemeral consumer soon after.
                () = sender.closed() => return,
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    errors += 1;
                    tracing::debug!(%error, errors, "event consumer error");
                    if errors >= MAX_CONSECUTIVE_ERRORS {
                        tracing::warn!(%error, "event consumer keeps failing; ending the feed");
                        return;
                    }
                    continue;
                }
                None => return,
            };
            errors = 0;
            let Ok(info) = message.info() else {
                continue;
            };
            let event = StoredEvent {
                sequence: info.stream_sequence,
                stored_at: from_offset(info.published),
                message: delivered(message.message.clone()),
            };
            if sender.send(FeedItem::Event(event)).await.is_err() {
                return;
            }
        }
    });
    Ok(feed)
}

fn to_offset(time: DateTime<Utc>) -> time::OffsetDateTime {
    let nanos = i128::from(time.timestamp_micros()) * 1000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn from_offset(time: time::OffsetDateTime) -> DateTime<Utc> {
    let micros = i64::try_from(time.unix_timestamp_nanos() / 1000).unwrap_or(0);
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(first: u64, last: u64, messages: u64, first_time: DateTime<Utc>) -> State {
        serde_json::from_value(serde_json::json!({
            "messages": messages, "bytes": 0, "first_seq": first,
            "first_ts": first_time.to_rfc3339(), "last_seq": last,
            "last_ts": first_time.to_rfc3339(), "consumer_count": 0,
        }))
        .unwrap()
    }

    #[test]
    fn the_start_follows_what_the_stream_holds() {
        let now = Utc::now();
        let held = state(100, 200, 101, now);
        assert_eq!(
            plan(ReplayFrom::AfterSequence(150), &held),
            (
                DeliverPolicy::ByStartSequence {
                    start_sequence: 151
                },
                None
            )
        );
        let (policy, gone) = plan(ReplayFrom::AfterSequence(10), &held);
        assert_eq!(policy, DeliverPolicy::All);
        assert_eq!(gone.unwrap().resumes_at, Some(100));
        let (policy, reset) = plan(ReplayFrom::AfterSequence(999), &held);
        assert_eq!(policy, DeliverPolicy::All);
        assert!(reset.unwrap().detail.contains("not from this stream"));
        assert!(plan(ReplayFrom::AfterSequence(99), &held).1.is_none());
        assert_eq!(plan(ReplayFrom::Live, &held), (DeliverPolicy::New, None));
        let (_, old) = plan(ReplayFrom::Since(now - chrono::Duration::hours(1)), &held);
        assert!(old.is_some());
        let whole = state(1, 200, 200, now);
        assert!(
            plan(ReplayFrom::Since(now - chrono::Duration::hours(1)), &whole)
                .1
                .is_none()
        );
    }

    #[test]
    fn times_convert_both_ways() {
        let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
        assert_eq!(from_offset(to_offset(now)), now);
    }
}
