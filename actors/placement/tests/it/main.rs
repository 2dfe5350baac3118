//! Placement over a real bus (in-process and NATS): two workers heartbeat, sandboxes spread
//! across both, and stopping one is detected and reported as `lost`, on the bus too.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use osb_bus::{Bus, InProcessBus, NatsBus};
use osb_placement::{
    publish_heartbeats, Capacity, PlacementRequest, PlacementService, Usage, WorkerChange,
    WorkerHeartbeat,
};
use osb_proto::WorkerId;

fn heartbeat(id: WorkerId, name: &'static str) -> impl Fn(u64) -> WorkerHeartbeat + Send + 'static {
    move |sequence| WorkerHeartbeat {
        worker_id: id,
        name: name.parse().unwrap(),
        grpc_addr: format!("127.0.0.1:{}", 7000 + sequence % 2),
        isolation: "netns".to_owned(),
        runtimes: vec!["netns".to_owned()],
        capacity: Capacity {
            sandboxes: 50,
            cpu_count: 8,
            memory_mb: 8192,
        },
        usage: Usage::default(),
        sequence,
    }
}

async fn next_change(changes: &mut tokio::sync::mpsc::Receiver<WorkerChange>) -> WorkerChange {
    tokio::time::timeout(Duration::from_secs(10), changes.recv())
        .await
        .expect("a membership change within 10 s")
        .expect("the service is running")
}

async fn spread_and_detect_loss(bus: Arc<dyn Bus>) {
    let (service, mut changes) = PlacementService::start(
        bus.clone(),
        Duration::from_millis(400),
        Duration::from_millis(50),
    )
    .await
    .unwrap();
    let mut lost_events = bus.subscribe("osb.worker.*.lost").await.unwrap();
    bus.flush().await.unwrap();
    let (a, b) = (WorkerId::new(), WorkerId::new());
    let worker_a = publish_heartbeats(
        bus.clone(),
        Duration::from_millis(50),
        heartbeat(a, "worker-a"),
    );
    let worker_b = publish_heartbeats(
        bus.clone(),
        Duration::from_millis(50),
        heartbeat(b, "worker-b"),
    );
    let mut joined = [
        next_change(&mut changes).await,
        next_change(&mut changes).await,
    ];
    joined.sort_by_key(|change| format!("{change:?}"));
    assert!(joined.contains(&WorkerChange::Joined(a)) && joined.contains(&WorkerChange::Joined(b)));

    let request = PlacementRequest::netns(1, 256);
    let mut on_a = 0;
    let mut on_b = 0;
    for _ in 0..6 {
        let (id, _, _) = service.place(request).unwrap();
        if id == a {
            on_a += 1;
        } else if id == b {
            on_b += 1;
        }
    }
    assert!(
        on_a >= 2 && on_b >= 2,
        "spread across both workers: {on_a} / {on_b}"
    );

    worker_b.abort();
    assert_eq!(next_change(&mut changes).await, WorkerChange::Lost(b));
    let event = lost_events
        .next_within(Duration::from_secs(5))
        .await
        .expect("lost event on the bus");
    assert_eq!(event.subject, format!("osb.worker.{b}.lost"));
    assert_eq!(service.live_workers(), vec![a]);
    let views = service.worker_views();
    let status_of = |id| {
        views
            .iter()
            .find(|(view, _)| view.heartbeat.worker_id == id)
            .map(|(view, age)| (view.status, *age))
            .unwrap()
    };
    let (status_a, age_a) = status_of(a);
    let (status_b, age_b) = status_of(b);
    assert_eq!(
        (status_a, status_b),
        (
            osb_placement::WorkerStatus::Live,
            osb_placement::WorkerStatus::Lost
        )
    );
    assert!(age_a < Duration::from_millis(400) && age_b >= Duration::from_millis(400));
    for _ in 0..3 {
        assert_eq!(
            service.place(request).unwrap().0,
            a,
            "only the live worker is chosen"
        );
    }
    worker_a.abort();
}

#[tokio::test]
async fn in_process_bus() {
    spread_and_detect_loss(Arc::new(InProcessBus::new())).await;
}

#[tokio::test]
async fn nats_bus() {
    let url =
        std::env::var("OSB_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    spread_and_detect_loss(Arc::new(NatsBus::connect(&url).await.unwrap())).await;
}

/// A heartbeat whose name is not a worker name (one that could not be in a certificate: path
/// characters, spaces, upper case) is ignored as malformed: placement never offers that worker,
/// while a well-named one next to it joins.
#[tokio::test]
async fn a_heartbeat_with_an_invalid_worker_name_is_ignored() {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    let (service, mut changes) = PlacementService::start(
        bus.clone(),
        Duration::from_secs(5),
        Duration::from_millis(50),
    )
    .await
    .unwrap();
    let forged = WorkerId::new();
    for name in ["../../etc/passwd", "Worker A", "w_1", ""] {
        let mut beat = serde_json::to_value(heartbeat(forged, "w1")(0)).unwrap();
        beat["name"] = serde_json::json!(name);
        let bytes = osb_bus::Envelope::new(osb_placement::HEARTBEAT_KIND, beat, None)
            .to_bytes()
            .unwrap();
        bus.publish(
            osb_bus::worker_heartbeat(forged).as_str(),
            osb_bus::BusMessage::new(bytes),
        )
        .await
        .unwrap();
    }
    let good = WorkerId::new();
    let worker = publish_heartbeats(
        bus.clone(),
        Duration::from_millis(50),
        heartbeat(good, "worker-good"),
    );
    assert_eq!(next_change(&mut changes).await, WorkerChange::Joined(good));
    assert_eq!(service.live_workers(), vec![good]);
    assert_eq!(service.name_of(forged), None);
    worker.abort();
}
