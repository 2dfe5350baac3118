//! Nothing is lost between commit and publish (issue 14 item 5): events committed to the outbox
//! wait while the bus is down and go out once it is back; a process that crashed after commit
//! (nothing published) or after publishing (nothing removed) leaves each event exactly once in
//! the stream once the next relay runs; a NATS server restarted in the middle of a stream of
//! events loses none and repeats none. The NATS cases run a `nats-server` of their own, so the
//! shared one is never restarted and the stream holds only this test's events.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use osb_bus::{
    command::CommandFeed, Bus, BusError, BusMessage, Delivered, EventFeed, FeedItem, InProcessBus,
    NatsBus, ReplayFrom, Subscription, MSG_ID_HEADER,
};
use osb_control::{drain_outbox_once, OutboxRelay};
use osb_proto::SandboxId;
use osb_store::{OutboxEvent, Store};
use osb_testkit::TestDatabase;

fn event(sandbox: SandboxId, n: usize) -> OutboxEvent {
    OutboxEvent {
        msg_id: format!("{sandbox}:tick:{n}"),
        subject: osb_bus::sandbox_event(sandbox, "tick")
            .unwrap()
            .as_str()
            .to_owned(),
        payload: format!("{{\"n\":{n}}}").into_bytes(),
    }
}

/// Every stored event's message id with how often the stream holds it, in stream order.
async fn stored_ids(bus: &dyn Bus) -> (Vec<String>, BTreeMap<String, usize>) {
    let mut feed = bus
        .follow_events(None, ReplayFrom::AfterSequence(0))
        .await
        .unwrap();
    let mut order = Vec::new();
    let mut counts = BTreeMap::new();
    while let Some(item) = feed.next_within(Duration::from_secs(2)).await {
        if let FeedItem::Event(stored) = item {
            let id = stored
                .message
                .headers
                .get(MSG_ID_HEADER)
                .cloned()
                .unwrap_or_default();
            *counts.entry(id.clone()).or_insert(0) += 1;
            order.push(id);
        }
    }
    (order, counts)
}

async fn wait_until_empty(store: &Store, within: Duration) {
    let deadline = Instant::now() + within;
    while !store.waiting_outbox(1).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the outbox never drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An in-process bus whose durable publishes fail while `down` is set.
#[derive(Debug)]
struct FlakyBus {
    inner: InProcessBus,
    down: AtomicBool,
}

#[async_trait]
impl Bus for FlakyBus {
    async fn publish(&self, subject: &str, message: BusMessage) -> Result<(), BusError> {
        self.inner.publish(subject, message).await
    }
    async fn publish_durable(&self, subject: &str, message: BusMessage) -> Result<(), BusError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(BusError::Closed);
        }
        self.inner.publish_durable(subject, message).await
    }
    async fn subscribe(&self, pattern: &str) -> Result<Subscription, BusError> {
        self.inner.subscribe(pattern).await
    }
    async fn queue_subscribe(&self, pattern: &str, group: &str) -> Result<Subscription, BusError> {
        self.inner.queue_subscribe(pattern, group).await
    }
    async fn request(
        &self,
        subject: &str,
        message: BusMessage,
        timeout: Duration,
    ) -> Result<Delivered, BusError> {
        self.inner.request(subject, message, timeout).await
    }
    async fn flush(&self) -> Result<(), BusError> {
        self.inner.flush().await
    }
    async fn publish_command(
        &self,
        worker: &str,
        verb: &str,
        message: BusMessage,
        msg_id: &str,
    ) -> Result<(), BusError> {
        self.inner
            .publish_command(worker, verb, message, msg_id)
            .await
    }
    async fn consume_commands(&self, worker: &str) -> Result<CommandFeed, BusError> {
        self.inner.consume_commands(worker).await
    }
    async fn follow_events(
        &self,
        pattern: Option<&str>,
        from: ReplayFrom,
    ) -> Result<EventFeed, BusError> {
        self.inner.follow_events(pattern, from).await
    }
}

#[tokio::test]
async fn events_wait_while_the_bus_is_down_and_go_out_once_in_order() {
    let database = TestDatabase::postgres().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    let bus = Arc::new(FlakyBus {
        inner: InProcessBus::new(),
        down: AtomicBool::new(true),
    });
    let relay = OutboxRelay::start(store.clone(), bus.clone());
    let sandbox = SandboxId::new();
    for n in 0..5 {
        store.append_outbox(&event(sandbox, n)).await.unwrap();
        relay.poke();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        store.waiting_outbox(10).await.unwrap().len(),
        5,
        "events kept while down"
    );
    bus.down.store(false, Ordering::SeqCst);
    wait_until_empty(&store, Duration::from_secs(15)).await;
    let (order, counts) = stored_ids(bus.as_ref()).await;
    let expected: Vec<String> = (0..5).map(|n| event(sandbox, n).msg_id).collect();
    assert_eq!(order, expected, "each once, in commit order");
    assert!(counts.values().all(|count| *count == 1));
}

/// A `nats-server` with JetStream of this test's own, on a free loopback port.
struct OwnNats {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl OwnNats {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Some(Self::spawn(port, dir.path()));
        Self { child, port, dir }
    }

    fn spawn(port: u16, dir: &Path) -> Child {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server is installed (scripts/services.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        self.child = Some(Self::spawn(self.port, self.dir.path()));
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn nats_bus(nats: &OwnNats) -> Arc<dyn Bus> {
    let bus = NatsBus::connect(&nats.url()).await.unwrap();
    bus.ensure_streams().await.unwrap();
    Arc::new(bus)
}

#[tokio::test]
async fn a_crash_after_commit_or_after_publish_leaves_each_event_once() {
    let nats = OwnNats::start();
    let bus = nats_bus(&nats).await;
    let database = TestDatabase::postgres().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    let sandbox = SandboxId::new();
    // A process committed three events and died before publishing any...
    for n in 0..3 {
        store.append_outbox(&event(sandbox, n)).await.unwrap();
    }
    // ...and another published the first one and died before removing it.
    let first = event(sandbox, 0);
    bus.publish_durable(
        &first.subject,
        BusMessage::new(first.payload.clone()).with_header(MSG_ID_HEADER, first.msg_id.clone()),
    )
    .await
    .unwrap();
    // The next relay (a later process) publishes what waits.
    assert_eq!(drain_outbox_once(&store, bus.as_ref()).await.unwrap(), 3);
    assert!(store.waiting_outbox(10).await.unwrap().is_empty());
    let (order, counts) = stored_ids(bus.as_ref()).await;
    let expected: Vec<String> = (0..3).map(|n| event(sandbox, n).msg_id).collect();
    assert_eq!(order, expected);
    assert!(counts.values().all(|count| *count == 1), "{counts:?}");
}

#[tokio::test]
async fn a_nats_restart_mid_stream_loses_and_repeats_nothing() {
    let mut nats = OwnNats::start();
    let bus = nats_bus(&nats).await;
    let database = TestDatabase::postgres().await.unwrap();
    let store = database.migrated_store().await.unwrap();
    let relay = OutboxRelay::start(store.clone(), bus.clone());
    let sandbox = SandboxId::new();
    const EVENTS: usize = 60;
    for n in 0..EVENTS {
        store.append_outbox(&event(sandbox, n)).await.unwrap();
        relay.poke();
        if n == EVENTS / 3 {
            nats.kill();
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
        if n == EVENTS / 2 {
            nats.restart();
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    wait_until_empty(&store, Duration::from_secs(60)).await;
    let (order, counts) = stored_ids(bus.as_ref()).await;
    let expected: Vec<String> = (0..EVENTS).map(|n| event(sandbox, n).msg_id).collect();
    assert_eq!(counts.len(), EVENTS, "every event is in the stream");
    assert!(
        counts.values().all(|count| *count == 1),
        "repeats: {counts:?}"
    );
    assert_eq!(order, expected, "in commit order");
}
