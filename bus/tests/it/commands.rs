//! The worker-command contract both buses honour (ADR 0020): a re-published message id is
//! delivered once; a command whose consumer dies without acknowledging it is delivered again
//! (to the next consumer of that worker); one worker never receives another's commands; an
//! acknowledged command is gone. NATS tests use a command space of their own, removed at the
//! end, so they never meet other tests' workers of the same name.

use std::sync::Arc;
use std::time::Duration;

use osb_bus::command::{CommandSettings, CommandSpace};
use osb_bus::{Bus, BusMessage, InProcessBus, NatsBus, MSG_ID_HEADER};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(400);
/// Short so redelivery after an unacknowledged delivery is quick to see.
const ACK_WAIT: Duration = Duration::from_secs(1);

struct Buses {
    bus: Arc<dyn Bus>,
    nats: Option<NatsBus>,
}

impl Buses {
    async fn in_process() -> Self {
        let settings = CommandSettings {
            ack_wait: ACK_WAIT,
            ..CommandSettings::default()
        };
        Self {
            bus: Arc::new(InProcessBus::new().with_command_settings(settings)),
            nats: None,
        }
    }

    async fn nats() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let settings = CommandSettings {
            space: CommandSpace::scoped(&format!("t{}", &tag[..12])).unwrap(),
            ack_wait: ACK_WAIT,
            ..CommandSettings::default()
        };
        let bus = NatsBus::connect(&crate::nats_url())
            .await
            .unwrap()
            .with_command_settings(settings);
        bus.ensure_streams().await.unwrap();
        Self {
            bus: Arc::new(bus.clone()),
            nats: Some(bus),
        }
    }

    async fn close(self) {
        if let Some(nats) = self.nats {
            nats.delete_command_stream().await.unwrap();
        }
    }
}

async fn next_payload(
    feed: &mut osb_bus::command::CommandFeed,
) -> (String, u64, osb_bus::command::CommandDelivery) {
    let delivery = tokio::time::timeout(WAIT, feed.next())
        .await
        .expect("a command in time")
        .expect("the feed is open")
        .expect("no bus error");
    let text = String::from_utf8(delivery.message.payload.to_vec()).unwrap();
    (text, delivery.delivery_count, delivery)
}

async fn nothing_more(feed: &mut osb_bus::command::CommandFeed) {
    assert!(
        tokio::time::timeout(QUIET, feed.next()).await.is_err(),
        "no further command"
    );
}

async fn republished_ids_are_delivered_once(buses: Buses) {
    let bus = &buses.bus;
    let mut feed = bus.consume_commands("wa").await.unwrap();
    for _ in 0..3 {
        bus.publish_command(
            "wa",
            "boot_sandbox",
            BusMessage::new("one"),
            "saga_1:boot_sandbox:do",
        )
        .await
        .unwrap();
    }
    bus.publish_command(
        "wa",
        "boot_sandbox",
        BusMessage::new("two"),
        "saga_2:boot_sandbox:do",
    )
    .await
    .unwrap();
    let (first, count, delivery) = next_payload(&mut feed).await;
    assert_eq!((first.as_str(), count), ("one", 1));
    assert_eq!(
        delivery.message.subject,
        format!("osb.cmd.{}.wa.boot_sandbox", subject_actor(&buses)),
    );
    assert_eq!(
        delivery
            .message
            .headers
            .get(MSG_ID_HEADER)
            .map(String::as_str),
        Some("saga_1:boot_sandbox:do")
    );
    delivery.ack().await.unwrap();
    let (second, _, delivery) = next_payload(&mut feed).await;
    assert_eq!(second, "two");
    delivery.ack().await.unwrap();
    nothing_more(&mut feed).await;
    drop(feed);
    buses.close().await;
}

fn subject_actor(buses: &Buses) -> String {
    match &buses.nats {
        Some(nats) => nats
            .command_settings()
            .space
            .subject("wa", "x")
            .unwrap()
            .as_str()
            .split('.')
            .nth(2)
            .unwrap()
            .to_owned(),
        None => "worker".to_owned(),
    }
}

async fn unacknowledged_commands_are_delivered_again(buses: Buses) {
    let bus = &buses.bus;
    bus.publish_command(
        "wa",
        "destroy_sandbox",
        BusMessage::new("d"),
        "saga_3:destroy_sandbox:do",
    )
    .await
    .unwrap();
    let mut dying = bus.consume_commands("wa").await.unwrap();
    let (text, count, delivery) = next_payload(&mut dying).await;
    assert_eq!((text.as_str(), count), ("d", 1));
    // The consumer dies holding it, unacknowledged.
    drop(delivery);
    drop(dying);
    let mut next = bus.consume_commands("wa").await.unwrap();
    let (text, count, delivery) = next_payload(&mut next).await;
    assert_eq!(text, "d");
    assert!(count >= 2, "the redelivery is counted: {count}");
    delivery.ack().await.unwrap();
    nothing_more(&mut next).await;
    drop(next);
    buses.close().await;
}

async fn in_progress_holds_a_command_past_its_ack_wait(buses: Buses) {
    let bus = &buses.bus;
    bus.publish_command(
        "wa",
        "checkpoint",
        BusMessage::new("c"),
        "saga_4:checkpoint:do",
    )
    .await
    .unwrap();
    let mut feed = bus.consume_commands("wa").await.unwrap();
    let (_, _, delivery) = next_payload(&mut feed).await;
    for _ in 0..4 {
        tokio::time::sleep(ACK_WAIT / 2).await;
        delivery.in_progress().await.unwrap();
    }
    delivery.ack().await.unwrap();
    nothing_more(&mut feed).await;
    drop(feed);
    buses.close().await;
}

async fn each_worker_gets_only_its_commands(buses: Buses) {
    let bus = &buses.bus;
    let mut worker_a = bus.consume_commands("wa").await.unwrap();
    let mut worker_b = bus.consume_commands("w.b").await.unwrap();
    for index in 0..5 {
        bus.publish_command(
            "wa",
            "restore",
            BusMessage::new(format!("a{index}")),
            &format!("sa{index}:restore:do"),
        )
        .await
        .unwrap();
        bus.publish_command(
            "w.b",
            "restore",
            BusMessage::new(format!("b{index}")),
            &format!("sb{index}:restore:do"),
        )
        .await
        .unwrap();
    }
    for (feed, letter) in [(&mut worker_a, 'a'), (&mut worker_b, 'b')] {
        let mut seen = Vec::new();
        for _ in 0..5 {
            let (text, _, delivery) = next_payload(feed).await;
            delivery.ack().await.unwrap();
            seen.push(text);
        }
        seen.sort();
        let expected: Vec<String> = (0..5).map(|index| format!("{letter}{index}")).collect();
        assert_eq!(seen, expected);
        nothing_more(feed).await;
    }
    let refused = bus
        .publish_command("a*b", "restore", BusMessage::new("x"), "k")
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("worker name"), "{refused}");
    drop((worker_a, worker_b));
    buses.close().await;
}

macro_rules! on_both_command_buses {
    ($($case:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Buses::in_process().await).await;
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Buses::nats().await).await;
                }
            )*
        }
    };
}

on_both_command_buses!(
    republished_ids_are_delivered_once,
    unacknowledged_commands_are_delivered_again,
    in_progress_holds_a_command_past_its_ack_wait,
    each_worker_gets_only_its_commands,
);
