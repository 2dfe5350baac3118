//! Worker commands on the in-process bus, with the semantics of the JetStream work queue they
//! replace: one queue per worker, each command handed to one consumer at a time, delivered
//! again when its consumer is dropped without acknowledging it or lets its ack wait pass, and
//! re-publications of a message id dropped inside the duplicate window. Nothing survives the
//! process, like everything on this bus: the saga log in the store is the durability.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::bus_trait::BusError;
use crate::command::{CommandAck, CommandDelivery, CommandFeed, CommandSettings, CommandSource};
use crate::headers::MSG_ID_HEADER;
use crate::message::{BusMessage, Delivered};

#[derive(Debug, Clone)]
struct Queued {
    message: Delivered,
    deliveries: u64,
}

#[derive(Debug)]
struct InFlight {
    queued: Queued,
    consumer: u64,
    deadline: Instant,
}

#[derive(Debug, Default)]
struct WorkerQueue {
    pending: VecDeque<Queued>,
    in_flight: HashMap<u64, InFlight>,
}

#[derive(Debug, Default)]
struct State {
    queues: HashMap<String, WorkerQueue>,
    /// Message id → when it was first published.
    seen: HashMap<String, Instant>,
    next_id: u64,
}

/// The command queues of one in-process bus.
#[derive(Debug, Clone)]
pub(crate) struct CommandQueues {
    settings: CommandSettings,
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

impl CommandQueues {
    pub(crate) fn new(settings: CommandSettings) -> Self {
        Self {
            settings,
            state: Arc::default(),
            notify: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, BusError> {
        self.state.lock().map_err(|_| BusError::Closed)
    }

    pub(crate) fn publish(
        &self,
        worker: &str,
        verb: &str,
        message: BusMessage,
        msg_id: &str,
    ) -> Result<(), BusError> {
        let subject = self.settings.space.subject(worker, verb)?;
        let now = Instant::now();
        {
            let mut state = self.lock()?;
            let window = self.settings.duplicate_window;
            state
                .seen
                .retain(|_, first| now.duration_since(*first) < window);
            if state.seen.contains_key(msg_id) {
                return Ok(());
            }
            state.seen.insert(msg_id.to_owned(), now);
            let mut headers = message.headers;
            headers.insert(MSG_ID_HEADER.to_owned(), msg_id.to_owned());
            let queue = state.queues.entry(worker.to_owned()).or_default();
            queue.pending.push_back(Queued {
                message: Delivered {
                    subject: subject.as_str().to_owned(),
                    reply: None,
                    headers,
                    payload: message.payload,
                },
                deliveries: 0,
            });
        }
        self.notify.notify_waiters();
        Ok(())
    }

    pub(crate) fn consume(&self, worker: &str) -> Result<CommandFeed, BusError> {
        // Validates the name as the NATS bus would.
        self.settings.space.consumer(worker)?;
        let consumer = {
            let mut state = self.lock()?;
            state.next_id += 1;
            state.next_id
        };
        Ok(CommandFeed::new(Box::new(QueueSource {
            queues: self.clone(),
            worker: worker.to_owned(),
            consumer,
        })))
    }

    /// Takes the next deliverable command of `worker` for `consumer`, first putting back
    /// every in-flight one whose ack wait passed.
    fn take(&self, worker: &str, consumer: u64) -> Result<Option<(u64, Queued)>, BusError> {
        let now = Instant::now();
        let ack_wait = self.settings.ack_wait;
        let mut state = self.lock()?;
        state.next_id += 1;
        let delivery = state.next_id;
        let queue = state.queues.entry(worker.to_owned()).or_default();
        let expired: Vec<u64> = queue
            .in_flight
            .iter()
            .filter(|(_, entry)| entry.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(entry) = queue.in_flight.remove(&id) {
                queue.pending.push_front(entry.queued);
            }
        }
        let Some(mut queued) = queue.pending.pop_front() else {
            return Ok(None);
        };
        queued.deliveries += 1;
        queue.in_flight.insert(
            delivery,
            InFlight {
                queued: queued.clone(),
                consumer,
                deadline: now + ack_wait,
            },
        );
        Ok(Some((delivery, queued)))
    }

    /// The earliest ack-wait deadline of `worker`'s in-flight commands.
    fn next_deadline(&self, worker: &str) -> Option<Instant> {
        let state = self.state.lock().ok()?;
        state
            .queues
            .get(worker)?
            .in_flight
            .values()
            .map(|entry| entry.deadline)
            .min()
    }

    fn settle(&self, worker: &str, delivery: u64, done: bool) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let Some(queue) = state.queues.get_mut(worker) else {
            return;
        };
        if done {
            queue.in_flight.remove(&delivery);
        } else if let Some(entry) = queue.in_flight.get_mut(&delivery) {
            entry.deadline = Instant::now() + self.settings.ack_wait;
        }
    }

    /// A consumer went away: what it held goes back to the front of its queue.
    fn release(&self, worker: &str, consumer: u64) {
        {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            let Some(queue) = state.queues.get_mut(worker) else {
                return;
            };
            let held: Vec<u64> = queue
                .in_flight
                .iter()
                .filter(|(_, entry)| entry.consumer == consumer)
                .map(|(id, _)| *id)
                .collect();
            for id in held.into_iter().rev() {
                if let Some(entry) = queue.in_flight.remove(&id) {
                    queue.pending.push_front(entry.queued);
                }
            }
        }
        self.notify.notify_waiters();
    }
}

struct QueueSource {
    queues: CommandQueues,
    worker: String,
    consumer: u64,
}

impl Drop for QueueSource {
    fn drop(&mut self) {
        self.queues.release(&self.worker, self.consumer);
    }
}

#[async_trait]
impl CommandSource for QueueSource {
    async fn next(&mut self) -> Option<Result<CommandDelivery, BusError>> {
        loop {
            // Registered before looking, so a publish between the look and the wait is seen.
            let notified = self.queues.notify.notified();
            match self.queues.take(&self.worker, self.consumer) {
                Err(error) => return Some(Err(error)),
                Ok(Some((delivery, queued))) => {
                    let acker = QueueAck {
                        queues: self.queues.clone(),
                        worker: self.worker.clone(),
                        delivery,
                    };
                    return Some(Ok(CommandDelivery::new(
                        queued.message,
                        queued.deliveries,
                        Box::new(acker),
                    )));
                }
                Ok(None) => {}
            }
            match self.queues.next_deadline(&self.worker) {
                Some(deadline) => {
                    let _ = tokio::time::timeout_at(deadline.into(), notified).await;
                }
                None => notified.await,
            }
        }
    }
}

struct QueueAck {
    queues: CommandQueues,
    worker: String,
    delivery: u64,
}

#[async_trait]
impl CommandAck for QueueAck {
    async fn ack(&self) -> Result<(), BusError> {
        self.queues.settle(&self.worker, self.delivery, true);
        Ok(())
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        self.queues.settle(&self.worker, self.delivery, false);
        Ok(())
    }
}
