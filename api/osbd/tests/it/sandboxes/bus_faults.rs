//! Lost, duplicated and reordered messages are harmless (issue 13, ADR 0020/0021): a
//! fault-injecting bus wraps the in-process bus of a whole platform (control plane and worker
//! share it) and a create + destroy through the REST API runs under each fault. Every run ends
//! with the sandbox running and working, then destroyed, with nothing left behind: no proxy
//! session, no namespace or nft table, no row other than `destroyed`. A worker that cannot
//! publish an outcome after executing (what a runner killed at that point leaves) gets the
//! command again and answers from its record: the redelivered answer says `replayed`. Every
//! run also records every byte published on the bus and finds neither the secret value, nor the
//! sandbox's sealed token, nor a user env value (they travel over the gRPC value channel).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use osb_bus::command::{CommandFeed, CommandSettings, CommandSpace, StepOutcome, OUTCOME_KIND};
use osb_bus::{
    Bus, BusError, BusMessage, Delivered, Envelope, EventFeed, InProcessBus, NatsBus, ReplayFrom,
    Subscription, MSG_ID_HEADER,
};
use osb_control::CommandTimings;
use osb_store::SandboxStatus;
use serde_json::json;

use osbd::testkit::{start_platform, Platform, PlatformOptions};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// The first send of every command never reaches the bus.
    DropFirstCommand,
    /// Every command is published twice (as distinct messages, past the duplicate window).
    DuplicateEveryCommand,
    /// The first outcome of every command is lost.
    DropFirstOutcome,
    /// Outcomes are held back a varying while, so they arrive out of order.
    ReorderOutcomes,
    /// The first publish of every outcome fails after the command ran (the runner must not
    /// acknowledge, and the redelivery must be answered from the record).
    FailFirstOutcomePublish,
}

/// A bus (in-process, or NATS with a command space of its own) with one fault.
#[derive(Debug)]
struct FaultyBus {
    inner: Arc<dyn Bus>,
    fault: Fault,
    /// Idempotency keys whose first command / outcome was already tampered with.
    seen: Mutex<HashSet<String>>,
    /// Every outcome that reached the bus.
    outcomes: Mutex<Vec<StepOutcome>>,
    turn: Mutex<u64>,
    /// Every byte of every message published (the canary search).
    wire: Mutex<Vec<u8>>,
}

impl FaultyBus {
    fn new(fault: Fault, inner: Arc<dyn Bus>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            fault,
            seen: Mutex::default(),
            outcomes: Mutex::default(),
            turn: Mutex::default(),
            wire: Mutex::default(),
        })
    }

    /// True the first time `key` is seen.
    fn first(&self, key: &str) -> bool {
        self.seen.lock().unwrap().insert(key.to_owned())
    }

    fn saw(&self, subject: &str, message: &BusMessage) {
        let mut wire = self.wire.lock().unwrap();
        wire.extend_from_slice(subject.as_bytes());
        wire.extend_from_slice(format!("{:?}", message.headers).as_bytes());
        wire.extend_from_slice(&message.payload);
    }

    fn outcome_of(message: &BusMessage) -> Option<StepOutcome> {
        let envelope = Envelope::<StepOutcome>::from_bytes(&message.payload).ok()?;
        (envelope.kind == OUTCOME_KIND).then_some(envelope.payload)
    }
}

#[async_trait]
impl Bus for FaultyBus {
    async fn publish(&self, subject: &str, message: BusMessage) -> Result<(), BusError> {
        self.saw(subject, &message);
        self.inner.publish(subject, message).await
    }

    async fn publish_durable(&self, subject: &str, message: BusMessage) -> Result<(), BusError> {
        self.saw(subject, &message);
        let Some(outcome) = Self::outcome_of(&message) else {
            return self.inner.publish_durable(subject, message).await;
        };
        match self.fault {
            Fault::DropFirstOutcome if self.first(&outcome.key) => return Ok(()),
            Fault::FailFirstOutcomePublish if self.first(&outcome.key) => {
                return Err(BusError::Closed)
            }
            Fault::ReorderOutcomes => {
                let delay = {
                    let mut turn = self.turn.lock().unwrap();
                    *turn += 1;
                    Duration::from_millis(50 * (*turn % 4))
                };
                self.outcomes.lock().unwrap().push(outcome);
                let inner = Arc::clone(&self.inner);
                let subject = subject.to_owned();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = inner.publish_durable(&subject, message).await;
                });
                return Ok(());
            }
            _ => {}
        }
        self.outcomes.lock().unwrap().push(outcome);
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
        self.saw(verb, &message);
        let key = msg_id.split('#').next().unwrap_or(msg_id).to_owned();
        match self.fault {
            Fault::DropFirstCommand if self.first(&key) => Ok(()),
            Fault::DuplicateEveryCommand => {
                let mut copy = message.clone();
                copy.headers.remove(MSG_ID_HEADER);
                self.inner
                    .publish_command(worker, verb, message, msg_id)
                    .await?;
                self.inner
                    .publish_command(worker, verb, copy, &format!("{msg_id}~copy"))
                    .await
            }
            _ => {
                self.inner
                    .publish_command(worker, verb, message, msg_id)
                    .await
            }
        }
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

/// Redelivery after a failed outcome publish waits this long.
const ACK_WAIT: Duration = Duration::from_secs(1);

fn in_process() -> (Arc<dyn Bus>, Option<NatsBus>) {
    let settings = CommandSettings {
        ack_wait: ACK_WAIT,
        ..CommandSettings::default()
    };
    (
        Arc::new(InProcessBus::new().with_command_settings(settings)),
        None,
    )
}

/// The shared NATS server, with this test's commands in a space of their own.
async fn over_nats() -> (Arc<dyn Bus>, Option<NatsBus>) {
    let tag = format!("b{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let settings = CommandSettings {
        space: CommandSpace::scoped(&tag).unwrap(),
        ack_wait: ACK_WAIT,
        ..CommandSettings::default()
    };
    let bus = NatsBus::connect("nats://127.0.0.1:4222")
        .await
        .expect("NATS")
        .with_command_settings(settings);
    bus.ensure_streams().await.expect("streams");
    (Arc::new(bus.clone()), Some(bus))
}

async fn create_and_destroy_under(
    fault: Fault,
    (inner, nats): (Arc<dyn Bus>, Option<NatsBus>),
    prefix: &'static str,
    number: u8,
) {
    let bus = FaultyBus::new(fault, inner);
    let mut options = PlatformOptions::new(prefix, number);
    options.bus = Some(bus.clone());
    options.commands = Some(CommandTimings {
        attempt_wait: Duration::from_millis(1500),
        attempts: 4,
    });
    let platform = start_platform(options).await;
    platform.project_with_key("demo").await;

    let env_canary = "user-env-canary-5d81e0";
    let (status, created) = platform
        .call(
            "POST",
            "/api/sandboxes",
            Some(json!({ "project": "demo", "envs": { "DB_PASSWORD": env_canary } })),
        )
        .await;
    assert_eq!(status, 201, "{fault:?}: {created}");
    let id = created["sandboxID"].as_str().unwrap().to_owned();
    let (code, body) = platform.curl_origin(&id).await;
    assert_eq!(code, "200", "{fault:?}: the sandbox works: {body}");
    let (_, env, _) = platform.sh(&id, "env").await;
    assert!(
        env.contains(env_canary),
        "{fault:?}: the user env reached the sandbox"
    );
    let token = env
        .lines()
        .find_map(|line| line.strip_prefix("ANTHROPIC_API_KEY="))
        .expect("a sealed token in the sandbox")
        .to_owned();
    let (status, body) = platform
        .call("DELETE", &format!("/api/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, 200, "{fault:?}: {body}");
    nothing_left(&platform, &id, fault).await;

    // Values and tokens went over the link, never on the bus.
    let wire = String::from_utf8_lossy(&bus.wire.lock().unwrap()).into_owned();
    assert!(
        wire.contains("boot_sandbox"),
        "{fault:?}: the recorder saw the commands"
    );
    assert!(
        !wire.contains(env_canary),
        "{fault:?}: a user env value on the bus"
    );
    assert!(
        !wire.contains(&token),
        "{fault:?}: a sealed token on the bus"
    );
    assert!(
        platform.canary.found_in_bytes(wire.as_bytes()).is_empty(),
        "{fault:?}: the secret value on the bus"
    );

    let outcomes = bus.outcomes.lock().unwrap().clone();
    match fault {
        Fault::FailFirstOutcomePublish | Fault::DuplicateEveryCommand | Fault::DropFirstOutcome => {
            // Each command ran once; what the worker said again came from its record.
            assert!(
                outcomes.iter().any(|outcome| outcome.replayed),
                "{fault:?}: some answer came from the record: {outcomes:?}"
            );
        }
        Fault::DropFirstCommand | Fault::ReorderOutcomes => {}
    }
    let fresh: Vec<&str> = outcomes
        .iter()
        .filter(|outcome| !outcome.replayed)
        .map(|outcome| outcome.key.as_str())
        .collect();
    let unique: HashSet<&&str> = fresh.iter().collect();
    assert_eq!(
        unique.len(),
        fresh.len(),
        "{fault:?}: a command was executed twice: {fresh:?}"
    );
    platform.stop().await;
    if let Some(nats) = nats {
        nats.delete_command_stream().await.unwrap();
    }
}

async fn nothing_left(platform: &Platform, id: &str, fault: Fault) {
    let sandbox: osb_proto::SandboxId = id.parse().unwrap();
    let worker = &platform.workers[0];
    assert!(
        worker.proxy().registry().session_of(sandbox).is_none(),
        "{fault:?}: a proxy session is left"
    );
    assert!(
        worker.runtime().info(sandbox).await.is_err(),
        "{fault:?}: the sandbox is left on the worker"
    );
    let row = platform.store.find_sandbox(sandbox).await.unwrap();
    assert_eq!(row.status, SandboxStatus::Destroyed, "{fault:?}");
    for (prefix, data_dir) in &platform.prefixes {
        let census = osb_vm::netns::census_worker(prefix, data_dir)
            .await
            .unwrap();
        assert!(
            census.is_empty(),
            "{fault:?}: host objects left: {census:?}"
        );
    }
}

#[tokio::test]
async fn a_dropped_command_is_sent_again() {
    create_and_destroy_under(Fault::DropFirstCommand, in_process(), "osbf1", 131).await;
}

#[tokio::test]
async fn duplicated_commands_run_once() {
    create_and_destroy_under(Fault::DuplicateEveryCommand, in_process(), "osbf2", 132).await;
}

#[tokio::test]
async fn a_lost_outcome_is_recovered_from_the_record() {
    create_and_destroy_under(Fault::DropFirstOutcome, in_process(), "osbf3", 133).await;
}

#[tokio::test]
async fn reordered_outcomes_are_matched_by_key() {
    create_and_destroy_under(Fault::ReorderOutcomes, in_process(), "osbf4", 134).await;
}

#[tokio::test]
async fn a_runner_that_could_not_publish_answers_the_redelivery_from_its_record() {
    create_and_destroy_under(Fault::FailFirstOutcomePublish, in_process(), "osbf5", 135).await;
}

// The same on the real NATS server (JetStream work queue, durable consumer, redelivery after
// the ack wait). Named `…over_nats` so they join the one-at-a-time group of tests whose workers
// heartbeat on the shared server (.config/nextest.toml).

#[tokio::test]
async fn duplicated_commands_run_once_over_nats() {
    let bus = over_nats().await;
    create_and_destroy_under(Fault::DuplicateEveryCommand, bus, "osbf6", 136).await;
}

#[tokio::test]
async fn a_lost_outcome_is_recovered_from_the_record_over_nats() {
    let bus = over_nats().await;
    create_and_destroy_under(Fault::DropFirstOutcome, bus, "osbf7", 137).await;
}

#[tokio::test]
async fn a_dropped_command_is_sent_again_over_nats() {
    let bus = over_nats().await;
    create_and_destroy_under(Fault::DropFirstCommand, bus, "osbf8", 138).await;
}

#[tokio::test]
async fn a_runner_that_could_not_publish_answers_the_redelivery_from_its_record_over_nats() {
    let bus = over_nats().await;
    create_and_destroy_under(Fault::FailFirstOutcomePublish, bus, "osbf9", 139).await;
}
