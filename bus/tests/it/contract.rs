//! The contract both buses honour.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use osb_bus::{Bus, BusError, BusMessage, CORRELATION_ID_HEADER};

use crate::prefix;

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

async fn publish_subscribe_with_headers(bus: Arc<dyn Bus>) {
    let p = prefix();
    let mut subscription = bus.subscribe(&format!("{p}.a")).await.unwrap();
    bus.flush().await.unwrap();
    bus.publish(
        &format!("{p}.a"),
        BusMessage::new("hello").with_header(CORRELATION_ID_HEADER, "req-1"),
    )
    .await
    .unwrap();
    let got = subscription.next_within(WAIT).await.expect("delivered");
    assert_eq!(got.subject, format!("{p}.a"));
    assert_eq!(&got.payload[..], b"hello");
    assert_eq!(
        got.headers.get(CORRELATION_ID_HEADER).map(String::as_str),
        Some("req-1")
    );
}

async fn wildcards_route_like_nats(bus: Arc<dyn Bus>) {
    let p = prefix();
    let mut one = bus
        .subscribe(&format!("{p}.sandbox.*.created"))
        .await
        .unwrap();
    let mut all = bus.subscribe(&format!("{p}.>")).await.unwrap();
    bus.flush().await.unwrap();
    for subject in [
        format!("{p}.sandbox.x.created"),
        format!("{p}.sandbox.x.y.created"),
        format!("{p}.project.y.secret_updated"),
    ] {
        bus.publish(&subject, BusMessage::new("e")).await.unwrap();
    }
    let first = one.next_within(WAIT).await.expect("single-token wildcard");
    assert_eq!(first.subject, format!("{p}.sandbox.x.created"));
    assert!(
        one.next_within(QUIET).await.is_none(),
        "'*' matched two tokens"
    );
    for _ in 0..3 {
        all.next_within(WAIT)
            .await
            .expect("'>' matches everything below");
    }
}

async fn queue_groups_deliver_once_per_group(bus: Arc<dyn Bus>) {
    let p = prefix();
    let subject = format!("{p}.work");
    let mut member_a = bus.queue_subscribe(&subject, "workers").await.unwrap();
    let mut member_b = bus.queue_subscribe(&subject, "workers").await.unwrap();
    let mut watcher = bus.subscribe(&subject).await.unwrap();
    bus.flush().await.unwrap();
    for index in 0..20 {
        bus.publish(&subject, BusMessage::new(format!("{index}")))
            .await
            .unwrap();
    }
    for _ in 0..20 {
        watcher
            .next_within(WAIT)
            .await
            .expect("plain subscriber sees all");
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for member in [&mut member_a, &mut member_b] {
        while let Some(message) = member.next_within(QUIET).await {
            total += 1;
            seen.insert(message.payload.clone());
        }
    }
    assert_eq!(total, 20, "each message went to exactly one group member");
    assert_eq!(seen.len(), 20);
}

async fn request_reply(bus: Arc<dyn Bus>) {
    let p = prefix();
    let subject = format!("{p}.cmd.echo");
    let mut responder = bus.subscribe(&subject).await.unwrap();
    bus.flush().await.unwrap();
    let server = {
        let bus = bus.clone();
        tokio::spawn(async move {
            let request = responder.next().await.expect("request");
            let reply = request.reply.clone().expect("reply subject");
            let mut answer = request.payload.to_vec();
            answer.extend_from_slice(b"-pong");
            bus.respond(
                &reply,
                BusMessage::new(answer).with_header("x-answer", "yes"),
            )
            .await
            .unwrap();
        })
    };
    let reply = bus
        .request(&subject, BusMessage::new("ping"), WAIT)
        .await
        .expect("reply");
    assert_eq!(&reply.payload[..], b"ping-pong");
    assert_eq!(
        reply.headers.get("x-answer").map(String::as_str),
        Some("yes")
    );
    server.await.unwrap();
}

async fn no_responders_and_timeouts_are_distinguished(bus: Arc<dyn Bus>) {
    let p = prefix();
    let nobody = bus
        .request(&format!("{p}.cmd.nobody"), BusMessage::new("x"), WAIT)
        .await
        .unwrap_err();
    assert!(matches!(nobody, BusError::NoResponders { .. }), "{nobody}");
    assert!(nobody
        .to_string()
        .contains("is the responsible process running"));

    let subject = format!("{p}.cmd.silent");
    let _silent = bus.subscribe(&subject).await.unwrap();
    bus.flush().await.unwrap();
    let timeout = Duration::from_millis(200);
    let error = bus
        .request(&subject, BusMessage::new("x"), timeout)
        .await
        .unwrap_err();
    assert!(matches!(error, BusError::TimedOut { .. }), "{error}");
}

async fn dropping_a_subscription_unsubscribes(bus: Arc<dyn Bus>) {
    let p = prefix();
    let subject = format!("{p}.cmd.gone");
    let responder = bus.subscribe(&subject).await.unwrap();
    bus.flush().await.unwrap();
    drop(responder);
    // Give the unsubscription a moment to reach the server.
    let mut error = None;
    for _ in 0..20 {
        match bus
            .request(&subject, BusMessage::new("x"), Duration::from_millis(100))
            .await
        {
            Err(BusError::NoResponders { .. }) => {
                error = None;
                break;
            }
            other => error = Some(format!("{other:?}")),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(error.is_none(), "still answered after drop: {error:?}");
}

async fn invalid_subjects_are_refused(bus: Arc<dyn Bus>) {
    for bad in ["", "a..b", "a.*", "a b", "a.>"] {
        let error = bus.publish(bad, BusMessage::new("x")).await.unwrap_err();
        assert!(
            matches!(error, BusError::InvalidSubject(_)),
            "{bad:?}: {error}"
        );
    }
    let error = bus.subscribe("a.>.b").await.unwrap_err();
    assert!(error.to_string().contains("'>' may only be the last token"));
}

async fn durable_events_reach_subscribers(bus: Arc<dyn Bus>) {
    let sandbox = osb_proto::SandboxId::new();
    let subject = osb_bus::sandbox_event(sandbox, "created").unwrap();
    let mut subscription = bus.subscribe(subject.as_str()).await.unwrap();
    bus.flush().await.unwrap();
    if let Some(nats) = bus_as_nats(&bus).await {
        nats.ensure_streams().await.unwrap();
    }
    bus.publish_durable(subject.as_str(), BusMessage::new("{}"))
        .await
        .unwrap();
    let got = subscription.next_within(WAIT).await.expect("delivered");
    assert_eq!(got.subject, subject.as_str());
}

async fn bus_as_nats(bus: &Arc<dyn Bus>) -> Option<osb_bus::NatsBus> {
    // The durable path needs the stream on NATS; the contract is the same otherwise.
    if format!("{bus:?}").starts_with("NatsBus") {
        Some(osb_bus::NatsBus::connect(&crate::nats_url()).await.unwrap())
    } else {
        None
    }
}

crate::on_both_buses!(
    publish_subscribe_with_headers,
    wildcards_route_like_nats,
    queue_groups_deliver_once_per_group,
    request_reply,
    no_responders_and_timeouts_are_distinguished,
    dropping_a_subscription_unsubscribes,
    invalid_subjects_are_refused,
    durable_events_reach_subscribers,
);
