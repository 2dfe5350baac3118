//! `EventRing`: the in-process bus's stand-in for the JetStream event stream — the last
//! `capacity` events published on the stream's subjects, each with a sequence. Readers follow it
//! from a sequence or a time, then live, without a gap or a repeat: the ring is both their
//! history and their live source, so there is no seam to stitch. A reader that falls further
//! behind than the ring holds is told so (a `Truncation`) and goes on from the oldest event.
//!
//! Sequences start at the process's start time in microseconds, so ids from an earlier
//! `osbd up` are always below this one's: a client resuming across a restart is told events
//! were lost instead of silently skipping new ones.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::headers::MSG_ID_HEADER;
use crate::message::Delivered;
use crate::nats::DUPLICATE_WINDOW;
use crate::pattern::matches;
use crate::replay::{FeedItem, ReplayFrom, StoredEvent, Truncation, FEED_BUFFER};

/// Events the in-process ring keeps unless configured otherwise.
pub const DEFAULT_EVENT_RING_CAPACITY: usize = 10_000;

#[derive(Debug)]
struct Ring {
    capacity: usize,
    /// The sequence the next event gets.
    next_sequence: u64,
    events: VecDeque<StoredEvent>,
    /// Events stored before this time are gone (process start, then the last eviction).
    lost_before: DateTime<Utc>,
    /// When this ring (this process) started.
    started_at: DateTime<Utc>,
    /// `Nats-Msg-Id` of held events → when stored: a republished event inside JetStream's
    /// duplicate window is stored once, as JetStream would.
    message_ids: HashMap<String, DateTime<Utc>>,
}

/// The ring, shared by clones of the bus.
#[derive(Debug, Clone)]
pub(crate) struct EventRing {
    ring: Arc<Mutex<Ring>>,
    /// The last sequence stored; readers wait on it for new events.
    newest: watch::Sender<u64>,
}

/// Where a reader stands.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// The last sequence the reader has seen (or asked to start after).
    after: u64,
}

impl EventRing {
    pub(crate) fn new(capacity: usize) -> Self {
        let now = Utc::now();
        let first = u64::try_from(now.timestamp_micros()).unwrap_or(1).max(1);
        let (newest, _) = watch::channel(first - 1);
        Self {
            ring: Arc::new(Mutex::new(Ring {
                capacity: capacity.max(1),
                next_sequence: first,
                events: VecDeque::new(),
                lost_before: now,
                started_at: now,
                message_ids: HashMap::new(),
            })),
            newest,
        }
    }

    /// Stores a published event.
    pub(crate) fn append(&self, message: Delivered) {
        let sequence = {
            let Ok(mut ring) = self.ring.lock() else {
                return;
            };
            let now = Utc::now();
            let message_id = message.headers.get(MSG_ID_HEADER).cloned();
            if let Some(id) = &message_id {
                let window = chrono::Duration::from_std(DUPLICATE_WINDOW).unwrap_or_default();
                if ring
                    .message_ids
                    .get(id)
                    .is_some_and(|stored_at| now - *stored_at < window)
                {
                    return;
                }
            }
            let sequence = ring.next_sequence;
            ring.next_sequence += 1;
            if ring.events.len() == ring.capacity {
                if let Some(evicted) = ring.events.pop_front() {
                    ring.lost_before = evicted.stored_at;
                    if let Some(id) = evicted.message.headers.get(MSG_ID_HEADER) {
                        if ring.message_ids.get(id) == Some(&evicted.stored_at) {
                            ring.message_ids.remove(id);
                        }
                    }
                }
            }
            if let Some(id) = message_id {
                ring.message_ids.insert(id, now);
            }
            ring.events.push_back(StoredEvent {
                sequence,
                stored_at: now,
                message,
            });
            sequence
        };
        self.newest.send_replace(sequence);
    }

    /// Where a reader starting at `from` stands, and whether something it asked for is gone.
    fn start(&self, from: ReplayFrom) -> (Cursor, Option<Truncation>) {
        let Ok(ring) = self.ring.lock() else {
            return (Cursor { after: u64::MAX }, None);
        };
        let newest = ring.next_sequence - 1;
        let oldest = ring.events.front().map(|event| event.sequence);
        let resumes_at = Some(oldest.unwrap_or(ring.next_sequence));
        match from {
            ReplayFrom::Live => (Cursor { after: newest }, None),
            ReplayFrom::AfterSequence(after) if after > newest => (
                Cursor {
                    after: oldest.unwrap_or(ring.next_sequence) - 1,
                },
                Some(Truncation {
                    resumes_at,
                    detail: format!("event {after} is not from this stream (it ends at {newest}; the platform restarted?): replaying everything it holds"),
                }),
            ),
            ReplayFrom::AfterSequence(after) => {
                let first_held = oldest.unwrap_or(ring.next_sequence);
                let truncation = (after + 1 < first_held).then(|| Truncation {
                    resumes_at,
                    detail: if ring.lost_before == ring.started_at {
                        format!("events after {after} are from before this platform started ({}): the in-process bus keeps events in memory only", ring.started_at.to_rfc3339())
                    } else {
                        format!("events after {after} are no longer held: the oldest held is {first_held} (the in-process bus keeps the last {} events of this process)", ring.capacity)
                    },
                });
                (
                    Cursor {
                        after: after.max(first_held - 1),
                    },
                    truncation,
                )
            }
            ReplayFrom::Since(time) => {
                let truncation = (time < ring.lost_before).then(|| Truncation {
                    resumes_at,
                    detail: if ring.lost_before == ring.started_at {
                        format!("this platform started at {}: the in-process bus keeps events in memory only, so earlier ones are gone", ring.started_at.to_rfc3339())
                    } else {
                        format!("events before {} are no longer held (the in-process bus keeps the last {} events of this process)", ring.lost_before.to_rfc3339(), ring.capacity)
                    },
                });
                let after = ring
                    .events
                    .iter()
                    .find(|event| event.stored_at >= time)
                    .map_or(newest, |event| event.sequence - 1);
                (Cursor { after }, truncation)
            }
        }
    }

    /// Up to `limit` held events after the cursor that match `pattern`, and a truncation when
    /// the ring has moved past the cursor. Advances the cursor past everything it looked at.
    fn read(
        &self,
        cursor: &mut Cursor,
        pattern: Option<&str>,
        limit: usize,
    ) -> (Vec<FeedItem>, bool) {
        let Ok(ring) = self.ring.lock() else {
            return (Vec::new(), true);
        };
        let mut items = Vec::new();
        let Some(oldest) = ring.events.front().map(|event| event.sequence) else {
            return (items, false);
        };
        if cursor.after + 1 < oldest {
            items.push(FeedItem::Truncated(Truncation {
                resumes_at: Some(oldest),
                detail: format!("this reader fell behind: events {} to {} were evicted from the in-process bus's ring of {} before it read them", cursor.after + 1, oldest - 1, ring.capacity),
            }));
            cursor.after = oldest - 1;
        }
        let start = usize::try_from(cursor.after + 1 - oldest).unwrap_or(usize::MAX);
        for event in ring.events.iter().skip(start) {
            cursor.after = event.sequence;
            if pattern.is_none_or(|pattern| matches(pattern, &event.message.subject)) {
                items.push(FeedItem::Event(event.clone()));
                if items.len() >= limit {
                    break;
                }
            }
        }
        (items, false)
    }

    /// Follows the ring from `from` into `sender` until the receiver goes away.
    pub(crate) fn follow(
        &self,
        pattern: Option<String>,
        from: ReplayFrom,
        sender: tokio::sync::mpsc::Sender<FeedItem>,
    ) {
        // Subscribing to `newest` before reading the start makes the first wait see anything
        // stored after the start was taken.
        let mut newest = self.newest.subscribe();
        let (mut cursor, truncation) = self.start(from);
        let ring = self.clone();
        tokio::spawn(async move {
            if let Some(truncation) = truncation {
                if sender.send(FeedItem::Truncated(truncation)).await.is_err() {
                    return;
                }
            }
            loop {
                newest.mark_unchanged();
                let (items, closed) = ring.read(&mut cursor, pattern.as_deref(), FEED_BUFFER);
                if closed {
                    return;
                }
                let caught_up = items.is_empty();
                for item in items {
                    if sender.send(item).await.is_err() {
                        return;
                    }
                }
                if !caught_up {
                    continue;
                }
                tokio::select! {
                    changed = newest.changed() => if changed.is_err() { return },
                    () = sender.closed() => return,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str) -> Delivered {
        Delivered {
            subject: subject.to_owned(),
            reply: None,
            headers: Default::default(),
            payload: Default::default(),
        }
    }

    fn read_all(ring: &EventRing, cursor: &mut Cursor) -> Vec<FeedItem> {
        ring.read(cursor, None, usize::MAX).0
    }

    #[test]
    fn a_full_ring_forgets_the_oldest_and_says_so() {
        let ring = EventRing::new(3);
        for index in 0..5 {
            ring.append(message(&format!("osb.sandbox.s{index}.created")));
        }
        let (mut cursor, truncation) = ring.start(ReplayFrom::AfterSequence(0));
        let truncation = truncation.expect("events 1.. are gone");
        let items = read_all(&ring, &mut cursor);
        let sequences: Vec<u64> = items
            .iter()
            .filter_map(|item| match item {
                FeedItem::Event(event) => Some(event.sequence),
                FeedItem::Truncated(_) => None,
            })
            .collect();
        assert_eq!(sequences.len(), 3);
        assert_eq!(truncation.resumes_at, Some(sequences[0]));
        assert!(sequences.windows(2).all(|pair| pair[1] == pair[0] + 1));
    }

    #[test]
    fn an_id_from_the_future_replays_everything_held() {
        let ring = EventRing::new(10);
        ring.append(message("osb.sandbox.a.created"));
        let (mut cursor, truncation) = ring.start(ReplayFrom::AfterSequence(u64::MAX - 1));
        assert!(truncation.unwrap().detail.contains("not from this stream"));
        assert_eq!(read_all(&ring, &mut cursor).len(), 1);
    }

    #[test]
    fn live_starts_after_the_newest_and_since_finds_by_time() {
        let ring = EventRing::new(10);
        ring.append(message("osb.sandbox.a.created"));
        let middle = Utc::now();
        ring.append(message("osb.sandbox.b.created"));
        let (mut live, none) = ring.start(ReplayFrom::Live);
        assert!(none.is_none());
        assert!(read_all(&ring, &mut live).is_empty());
        let (mut since, none) = ring.start(ReplayFrom::Since(middle));
        assert!(none.is_none(), "nothing was evicted after the start");
        let items = read_all(&ring, &mut since);
        assert!(
            matches!(&items[..], [FeedItem::Event(e)] if e.message.subject == "osb.sandbox.b.created")
        );
        let (_, before_start) = ring.start(ReplayFrom::Since(middle - chrono::Duration::days(1)));
        assert!(
            before_start.is_some(),
            "events before this process are not held"
        );
    }

    #[test]
    fn a_message_id_is_stored_once() {
        let ring = EventRing::new(10);
        let mut with_id = message("osb.sandbox.a.created");
        with_id
            .headers
            .insert(MSG_ID_HEADER.into(), "a:created".into());
        ring.append(with_id.clone());
        ring.append(with_id);
        ring.append(message("osb.sandbox.a.destroyed"));
        ring.append(message("osb.sandbox.a.destroyed"));
        let (mut cursor, _) = ring.start(ReplayFrom::AfterSequence(0));
        assert_eq!(
            read_all(&ring, &mut cursor).len(),
            3,
            "ids dedupe, id-less events do not"
        );
    }

    #[test]
    fn a_reader_left_behind_is_told() {
        let ring = EventRing::new(2);
        let (mut cursor, _) = ring.start(ReplayFrom::Live);
        for index in 0..4 {
            ring.append(message(&format!("osb.sandbox.s{index}.created")));
        }
        let items = read_all(&ring, &mut cursor);
        assert!(matches!(&items[0], FeedItem::Truncated(t) if t.detail.contains("fell behind")));
        assert_eq!(items.len(), 3);
    }

    #[test]
    fn sequences_of_a_later_process_are_higher() {
        let first = EventRing::new(10);
        for _ in 0..100 {
            first.append(message("osb.sandbox.a.created"));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = EventRing::new(10);
        second.append(message("osb.sandbox.a.created"));
        let last_of_first = *first.newest.borrow();
        let first_of_second = *second.newest.borrow();
        assert!(first_of_second > last_of_first);
    }
}
