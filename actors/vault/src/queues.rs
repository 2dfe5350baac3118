//! Per-project turns: fan-outs of one project run one after another in arrival order, those of
//! different projects run beside each other. A turn is an owned tokio mutex guard (FIFO), so it
//! is held across the fan-out's awaits and released when it ends, even by a panic. Idle
//! projects are forgotten so the map does not grow with every project ever changed. It never
//! sees a value.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use osb_proto::ProjectId;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// `project → its queue`.
#[derive(Debug, Default)]
pub(crate) struct ProjectQueues(HashMap<ProjectId, Arc<Mutex<()>>>);

impl ProjectQueues {
    /// The project's next turn: resolves when every earlier fan-out of it is done. The place
    /// in line is taken at the first poll (tokio's mutex is fair), which the actor's context
    /// does in the order the messages arrived.
    pub(crate) fn turn(&mut self, project: ProjectId) -> impl Future<Output = OwnedMutexGuard<()>> {
        self.forget_idle();
        let queue = Arc::clone(self.0.entry(project).or_default());
        queue.lock_owned()
    }

    /// Drops queues nobody waits on or holds.
    pub(crate) fn forget_idle(&mut self) {
        self.0.retain(|_, queue| Arc::strong_count(queue) > 1);
    }
}
