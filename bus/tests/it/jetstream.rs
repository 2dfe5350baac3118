//! JetStream specifics of the NATS bus: the event stream exists with bounded retention, stores
//! durable events, de-duplicates on `Nats-Msg-Id`, and does not capture command subjects.

use osb_bus::{BusMessage, NatsBus, EVENTS_STREAM, MSG_ID_HEADER};

use crate::nats_url;

#[tokio::test]
async fn event_stream_stores_events_once_per_message_id() {
    let bus = NatsBus::connect(&nats_url()).await.unwrap();
    bus.ensure_streams().await.unwrap();
    bus.ensure_streams().await.expect("idempotent");
    let mut stream = bus.jetstream().get_stream(EVENTS_STREAM).await.unwrap();
    let info = stream.info().await.unwrap().clone();
    assert!(
        info.config.max_age.as_secs() > 0 && info.config.max_bytes > 0,
        "retention is bounded"
    );
    assert!(
        !info
            .config
            .subjects
            .iter()
            .any(|s| s.starts_with("osb.cmd")),
        "commands are not captured"
    );

    let sandbox = osb_proto::SandboxId::new();
    let subject = osb_bus::sandbox_event(sandbox, "started").unwrap();
    let before = stream.info().await.unwrap().state.messages;
    let key = format!("{sandbox}:started");
    for _ in 0..3 {
        osb_bus::Bus::publish_durable(
            &bus,
            subject.as_str(),
            BusMessage::new("{}").with_header(MSG_ID_HEADER, key.clone()),
        )
        .await
        .unwrap();
    }
    let after = stream.info().await.unwrap().state.messages;
    assert_eq!(
        after,
        before + 1,
        "replays with the same Nats-Msg-Id are stored once"
    );
}

#[tokio::test]
async fn unreachable_nats_is_a_clear_error() {
    // Port 9 on loopback: nothing listens there.
    let error = NatsBus::connect("nats://127.0.0.1:9").await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot reach NATS at nats://127.0.0.1:9"),
        "{error}"
    );
}
