//! The replay contract both buses honour: `follow_events` gives every held event from a
//! sequence or a time, then live ones, in order, each once — including events published while
//! the follower starts (the seam) — says so when asked for events it no longer holds, and
//! follows only the durable stream's subjects. Every test follows its own sandbox's subjects.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use osb_bus::{Bus, BusError, BusMessage, FeedItem, ReplayFrom, StoredEvent, MSG_ID_HEADER};
use osb_proto::SandboxId;

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

/// A sandbox of its own, so the shared NATS stream's other events do not match.
struct Scope {
    sandbox: SandboxId,
}

impl Scope {
    fn new() -> Self {
        Self {
            sandbox: SandboxId::new(),
        }
    }

    fn pattern(&self) -> String {
        format!("osb.sandbox.{}.>", self.sandbox)
    }

    fn subject(&self, event: &str) -> String {
        osb_bus::sandbox_event(self.sandbox, event)
            .unwrap()
            .as_str()
            .to_owned()
    }

    async fn publish(&self, bus: &Arc<dyn Bus>, index: usize) {
        bus.publish_durable(
            &self.subject("secret_used"),
            BusMessage::new(format!("{index}")),
        )
        .await
        .unwrap();
    }
}

async fn next_event(feed: &mut osb_bus::EventFeed) -> StoredEvent {
    match feed.next_within(WAIT).await {
        Some(FeedItem::Event(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn index_of(event: &StoredEvent) -> usize {
    std::str::from_utf8(&event.message.payload)
        .unwrap()
        .parse()
        .unwrap()
}

async fn history_then_live_in_order(bus: Arc<dyn Bus>) {
    let scope = Scope::new();
    let before = Utc::now();
    for index in 0..3 {
        scope.publish(&bus, index).await;
    }
    let mut feed = bus
        .follow_events(Some(&scope.pattern()), ReplayFrom::Since(before))
        .await
        .unwrap();
    let history: Vec<StoredEvent> = [
        next_event(&mut feed).await,
        next_event(&mut feed).await,
        next_event(&mut feed).await,
    ]
    .into();
    assert_eq!(history.iter().map(index_of).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(history.windows(2).all(|w| w[0].sequence < w[1].sequence));
    assert!(history.iter().all(|e| e.stored_at >= before));
    scope.publish(&bus, 3).await;
    let live = next_event(&mut feed).await;
    assert_eq!(index_of(&live), 3);
    assert!(live.sequence > history[2].sequence);

    // Resuming after the second event gives the third and the live one, nothing else.
    let mut resumed = bus
        .follow_events(
            Some(&scope.pattern()),
            ReplayFrom::AfterSequence(history[1].sequence),
        )
        .await
        .unwrap();
    assert_eq!(index_of(&next_event(&mut resumed).await), 2);
    assert_eq!(index_of(&next_event(&mut resumed).await), 3);
    assert!(resumed.next_within(QUIET).await.is_none());
}

async fn live_starts_now(bus: Arc<dyn Bus>) {
    let scope = Scope::new();
    scope.publish(&bus, 0).await;
    let mut feed = bus
        .follow_events(Some(&scope.pattern()), ReplayFrom::Live)
        .await
        .unwrap();
    assert!(feed.next_within(QUIET).await.is_none(), "history replayed");
    scope.publish(&bus, 1).await;
    assert_eq!(index_of(&next_event(&mut feed).await), 1);
    // A time in the future is live too.
    let mut future = bus
        .follow_events(
            Some(&scope.pattern()),
            ReplayFrom::Since(Utc::now() + chrono::Duration::seconds(1)),
        )
        .await
        .unwrap();
    assert!(future.next_within(QUIET).await.is_none());
}

/// Events published while the follower starts: every one arrives exactly once, in order.
async fn no_gap_and_no_repeat_at_the_seam(bus: Arc<dyn Bus>) {
    let scope = Scope::new();
    let total = 200;
    scope.publish(&bus, 0).await;
    let mut first = bus
        .follow_events(Some(&scope.pattern()), ReplayFrom::AfterSequence(0))
        .await
        .unwrap();
    let start = loop {
        match first.next_within(WAIT).await.expect("the first event") {
            FeedItem::Event(event) => break event.sequence,
            FeedItem::Truncated(_) => continue,
        }
    };
    drop(first);
    let publisher = {
        let (bus, scope) = (
            bus.clone(),
            Scope {
                sandbox: scope.sandbox,
            },
        );
        tokio::spawn(async move {
            for index in 1..total {
                scope.publish(&bus, index).await;
                if index % 20 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut feed = bus
        .follow_events(Some(&scope.pattern()), ReplayFrom::AfterSequence(start - 1))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut last = 0;
    while seen.len() < total {
        let event = next_event(&mut feed).await;
        assert!(event.sequence > last, "sequences increase");
        last = event.sequence;
        seen.push(index_of(&event));
    }
    publisher.await.unwrap();
    assert_eq!(seen, (0..total).collect::<Vec<_>>());
    assert!(feed.next_within(QUIET).await.is_none(), "nothing repeated");
}

async fn an_unknown_id_is_reported_then_everything_held_replayed(bus: Arc<dyn Bus>) {
    let scope = Scope::new();
    scope.publish(&bus, 0).await;
    let mut feed = bus
        .follow_events(
            Some(&scope.pattern()),
            ReplayFrom::AfterSequence(u64::MAX / 2),
        )
        .await
        .unwrap();
    match feed.next_within(WAIT).await {
        Some(FeedItem::Truncated(truncation)) => {
            assert!(
                truncation.detail.contains("not from this stream"),
                "{truncation:?}"
            );
        }
        other => panic!("expected a truncation, got {other:?}"),
    }
    assert_eq!(index_of(&next_event(&mut feed).await), 0);
}

async fn a_message_id_is_stored_once(bus: Arc<dyn Bus>) {
    let scope = Scope::new();
    let before = Utc::now();
    for _ in 0..3 {
        bus.publish_durable(
            &scope.subject("created"),
            BusMessage::new("7").with_header(MSG_ID_HEADER, format!("{}:created", scope.sandbox)),
        )
        .await
        .unwrap();
    }
    scope.publish(&bus, 8).await;
    let mut feed = bus
        .follow_events(Some(&scope.pattern()), ReplayFrom::Since(before))
        .await
        .unwrap();
    assert_eq!(index_of(&next_event(&mut feed).await), 7);
    assert_eq!(index_of(&next_event(&mut feed).await), 8);
}

async fn only_stream_subjects_may_be_followed(bus: Arc<dyn Bus>) {
    for bad in [
        "osb.cmd.>",
        "osb.worker.*.heartbeat",
        ">",
        "osb.>",
        "osb.sandbox..x",
    ] {
        let error = bus
            .follow_events(Some(bad), ReplayFrom::Live)
            .await
            .unwrap_err();
        assert!(
            matches!(error, BusError::InvalidSubject(_)),
            "{bad}: {error}"
        );
    }
}

crate::on_both_buses!(
    history_then_live_in_order,
    live_starts_now,
    no_gap_and_no_repeat_at_the_seam,
    an_unknown_id_is_reported_then_everything_held_replayed,
    a_message_id_is_stored_once,
    only_stream_subjects_may_be_followed,
);

/// The in-process ring is bounded: a request older than what it holds is told so, and
/// replays from the oldest held event; subjects outside the stream are not stored.
#[tokio::test]
async fn the_in_process_ring_is_bounded_and_says_so() {
    let bus: Arc<dyn Bus> = Arc::new(osb_bus::InProcessBus::with_event_capacity(5));
    let scope = Scope::new();
    let mut live = bus
        .follow_events(Some(&scope.pattern()), ReplayFrom::Live)
        .await
        .unwrap();
    scope.publish(&bus, 0).await;
    let first = next_event(&mut live).await;
    for index in 1..15 {
        scope.publish(&bus, index).await;
    }
    let mut old = bus
        .follow_events(
            Some(&scope.pattern()),
            ReplayFrom::AfterSequence(first.sequence),
        )
        .await
        .unwrap();
    match old.next_within(WAIT).await {
        Some(FeedItem::Truncated(truncation)) => {
            assert!(
                truncation.detail.contains("no longer held"),
                "{truncation:?}"
            );
            assert!(truncation.resumes_at > Some(first.sequence + 1));
        }
        other => panic!("expected a truncation, got {other:?}"),
    }
    let replayed: Vec<usize> = [
        next_event(&mut old).await,
        next_event(&mut old).await,
        next_event(&mut old).await,
        next_event(&mut old).await,
        next_event(&mut old).await,
    ]
    .iter()
    .map(index_of)
    .collect();
    assert_eq!(replayed, (10..15).collect::<Vec<_>>());
    // Other subjects are not stored at all.
    bus.publish("osb.worker.w1.heartbeat", BusMessage::new("99"))
        .await
        .unwrap();
    bus.publish("osb.cmd.vm.boot", BusMessage::new("98"))
        .await
        .unwrap();
    let mut everything = bus
        .follow_events(None, ReplayFrom::AfterSequence(0))
        .await
        .unwrap();
    let mut count = 0;
    while let Some(item) = everything.next_within(QUIET).await {
        if let FeedItem::Event(event) = item {
            assert!(
                event.message.subject.starts_with("osb.sandbox."),
                "{event:?}"
            );
            count += 1;
        }
    }
    assert_eq!(count, 5);
}
