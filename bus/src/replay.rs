//! Following the durable event stream: where a reader starts (`ReplayFrom`), what it receives
//! (`FeedItem`: a stored event with its stream sequence, or a notice that events it asked for
//! are no longer held), and the `EventFeed` it reads from. Both buses implement
//! `Bus::follow_events` on top of these: NATS with a JetStream ordered consumer, the in-process
//! bus with its bounded ring.
//!
//! A feed never yields a sequence twice nor goes backwards: `EventFeed::next` drops any event
//! whose sequence is not above the last one it yielded (the seam between replay and live).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::message::Delivered;
use crate::nats::EVENTS_STREAM_SUBJECTS;
use crate::pattern::{validate_pattern, PatternError};

/// Where a reader of the event stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFrom {
    /// Only events stored from now on.
    Live,
    /// Every held event whose sequence is greater than this one (an SSE `Last-Event-ID`).
    AfterSequence(u64),
    /// Every held event stored at or after this time.
    Since(DateTime<Utc>),
}

/// An event as the stream stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The stream sequence: increasing, never reused by the same stream.
    pub sequence: u64,
    /// When the stream stored it.
    pub stored_at: DateTime<Utc>,
    pub message: Delivered,
}

/// Some events the reader asked for are no longer held (or never reached this stream: the
/// in-process ring starts empty with each process); the feed goes on from `resumes_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The first sequence the feed delivers next (`None`: the stream holds nothing yet).
    pub resumes_at: Option<u64>,
    /// A sentence saying what was lost and why.
    pub detail: String,
}

/// What a feed yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedItem {
    Event(StoredEvent),
    Truncated(Truncation),
}

/// Stored events in stream order, replayed history first and then live ones. Dropping it stops
/// the reader behind it.
#[derive(Debug)]
pub struct EventFeed {
    receiver: mpsc::Receiver<FeedItem>,
    last_sequence: Option<u64>,
}

/// Items a reader may have fetched ahead of a slow consumer of the feed; it then waits (no
/// event is dropped for being slow: the stream holds them).
pub(crate) const FEED_BUFFER: usize = 256;

impl EventFeed {
    /// A feed and the sender its reader task fills.
    pub(crate) fn channel() -> (mpsc::Sender<FeedItem>, Self) {
        let (sender, receiver) = mpsc::channel(FEED_BUFFER);
        (
            sender,
            Self {
                receiver,
                last_sequence: None,
            },
        )
    }

    /// The next item, or `None` when the bus is gone.
    pub async fn next(&mut self) -> Option<FeedItem> {
        loop {
            let item = self.receiver.recv().await?;
            if let FeedItem::Event(event) = &item {
                if self
                    .last_sequence
                    .is_some_and(|last| event.sequence <= last)
                {
                    continue;
                }
                self.last_sequence = Some(event.sequence);
            }
            return Some(item);
        }
    }

    /// The next item within `timeout`, or `None`.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<FeedItem> {
        tokio::time::timeout(timeout, self.next())
            .await
            .ok()
            .flatten()
    }
}

/// Checks that `pattern` names events the stream stores (`osb.sandbox.>`, `osb.project.>`,
/// `osb.saga.>` or a narrower pattern under one of them).
pub(crate) fn validate_stored_pattern(pattern: &str) -> Result<(), PatternError> {
    validate_pattern(pattern)?;
    let inside = EVENTS_STREAM_SUBJECTS.iter().any(|root| {
        let prefix = root.trim_end_matches('>');
        pattern.starts_with(prefix) && pattern.len() > prefix.len()
    });
    if inside {
        Ok(())
    } else {
        Err(PatternError {
            what: "event stream pattern",
            text: pattern.chars().take(120).collect(),
            reason: "the event stream holds only osb.sandbox.>, osb.project.> and osb.saga.>",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(sequence: u64) -> FeedItem {
        FeedItem::Event(StoredEvent {
            sequence,
            stored_at: Utc::now(),
            message: Delivered {
                subject: "osb.sandbox.x.created".into(),
                reply: None,
                headers: Default::default(),
                payload: Default::default(),
            },
        })
    }

    #[tokio::test]
    async fn a_feed_never_repeats_nor_goes_back() {
        let (sender, mut feed) = EventFeed::channel();
        for sequence in [3, 4, 4, 2, 5] {
            sender.send(stored(sequence)).await.unwrap();
        }
        drop(sender);
        let mut seen = Vec::new();
        while let Some(FeedItem::Event(event)) = feed.next().await {
            seen.push(event.sequence);
        }
        assert_eq!(seen, vec![3, 4, 5]);
    }

    #[test]
    fn only_stored_subjects_may_be_followed() {
        for good in [
            "osb.sandbox.>",
            "osb.sandbox.*.created",
            "osb.project.p.>",
            "osb.saga.>",
        ] {
            validate_stored_pattern(good).unwrap();
        }
        for bad in [
            "osb.>",
            ">",
            "osb.cmd.>",
            "osb.worker.*.heartbeat",
            "osb.sandbox.",
            "osb.sandboxes.>",
        ] {
            assert!(validate_stored_pattern(bad).is_err(), "{bad}");
        }
    }
}
