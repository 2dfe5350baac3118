//! `ProjectActor` (DESIGN.md §3): a project's configuration as the control plane acts on it —
//! the sandbox defaults a create resolves against, and the egress allowlist every running
//! sandbox of the project must follow. When a project's allowlist changes, the actor re-reads
//! it from the store and pushes it to the worker of every live sandbox through an
//! [`AllowlistPusher`] (the gRPC link in production), so a removed host is closed at once.
//!
//! It owns the ordering of allowlist changes: propagations of one project are serialised (a
//! second waits for the first, in arrival order; other projects run beside), and each pushes
//! the list it reads from the store when its turn comes — so a late push never re-applies an
//! older list than one already delivered. Replies tell domain errors (the store refused) from
//! fatal ones (a panic: the actor stops on purpose and its supervisor restarts it).
//!
//! It runs under `actix::Supervisor` on its own actix system thread and keeps no state but the
//! per-project queues: every message reads Postgres, so a restart resyncs by construction. It
//! never sees a secret value.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use actix::prelude::*;
use async_trait::async_trait;
use futures_util::FutureExt;
use osb_proto::{OrgId, ProjectId, SandboxId, WorkerName};
use osb_store::{ProjectRecord, Store, StoreError};
use tokio::sync::Mutex as TurnLock;

/// Delivers a sandbox's new egress allowlist to its worker.
#[async_trait]
pub trait AllowlistPusher: Send + Sync {
    /// Returns whether the worker applied it (false: it does not hold the sandbox).
    async fn push(
        &self,
        worker: &WorkerName,
        sandbox: SandboxId,
        allowlist: &[String],
    ) -> Result<bool, String>;
}

/// The project's current record (defaults, allowlist), read from the store.
#[derive(Debug, Message)]
#[rtype(result = "Result<ProjectRecord, StoreError>")]
pub struct GetProject {
    pub org: OrgId,
    pub project: ProjectId,
}

/// Why a propagation was not done.
#[derive(Debug, thiserror::Error)]
pub enum ProjectActorError {
    /// Domain: the store refused (unknown project, another org's project, a database error).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Fatal: the actor failed mid-propagation and restarts; asking again re-reads the store
    /// and pushes the current list.
    #[error("the project actor failed while propagating an allowlist and restarts: ask again")]
    Fatal,
}

/// The project's allowlist changed: push the stored list to every live sandbox of it.
#[derive(Debug, Message)]
#[rtype(result = "Result<AllowlistReport, ProjectActorError>")]
pub struct AllowlistChanged {
    pub org: OrgId,
    pub project: ProjectId,
}

/// What a propagation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AllowlistReport {
    /// Sandboxes that follow the new list now.
    pub applied: u64,
    /// Sandboxes whose worker could not be reached: (sandbox, reason).
    pub failed: Vec<(SandboxId, String)>,
}

/// Failpoint: the next propagation panics mid-flow (in its turn, before pushing). Nobody
/// sends it in production.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PanicOnNextPropagation;

/// The actor.
pub struct ProjectActor {
    store: Store,
    pusher: Arc<dyn AllowlistPusher>,
    /// One FIFO lock per project with a propagation queued or running.
    turns: HashMap<ProjectId, Arc<TurnLock<()>>>,
    panic_next: bool,
    restarts: u32,
}

impl std::fmt::Debug for ProjectActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectActor").finish_non_exhaustive()
    }
}

impl ProjectActor {
    /// An actor over `store` pushing through `pusher`.
    pub fn new(store: Store, pusher: Arc<dyn AllowlistPusher>) -> Self {
        Self {
            store,
            pusher,
            turns: HashMap::new(),
            panic_next: false,
            restarts: 0,
        }
    }

    /// The project's turn lock; idle ones are dropped so the map does not grow forever.
    fn turn_lock(&mut self, project: ProjectId) -> Arc<TurnLock<()>> {
        self.turns.retain(|_, lock| Arc::strong_count(lock) > 1);
        Arc::clone(self.turns.entry(project).or_default())
    }
}

impl Actor for ProjectActor {
    type Context = Context<Self>;
}

impl Supervised for ProjectActor {
    fn restarting(&mut self, _context: &mut Context<Self>) {
        self.restarts += 1;
        tracing::warn!(
            restarts = self.restarts,
            "project actor restarted; state is re-read from the store"
        );
    }
}

impl Handler<PanicOnNextPropagation> for ProjectActor {
    type Result = ();

    fn handle(&mut self, _message: PanicOnNextPropagation, _context: &mut Context<Self>) {
        self.panic_next = true;
    }
}

impl Handler<GetProject> for ProjectActor {
    type Result = ResponseFuture<Result<ProjectRecord, StoreError>>;

    fn handle(&mut self, message: GetProject, _context: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        Box::pin(async move { store.get_project(message.org, message.project).await })
    }
}

impl Handler<AllowlistChanged> for ProjectActor {
    type Result = ResponseActFuture<Self, Result<AllowlistReport, ProjectActorError>>;

    fn handle(&mut self, message: AllowlistChanged, _context: &mut Context<Self>) -> Self::Result {
        let (store, pusher) = (self.store.clone(), self.pusher.clone());
        let turn = self.turn_lock(message.project);
        let panic_now = std::mem::take(&mut self.panic_next);
        let work = async move {
            let _turn = turn.lock_owned().await;
            if panic_now {
                panic!("injected panic during an allowlist propagation");
            }
            propagate(&store, pusher.as_ref(), message).await
        };
        Box::pin(AssertUnwindSafe(work).catch_unwind().into_actor(self).map(
            |outcome, _actor, context| match outcome {
                Ok(result) => result.map_err(ProjectActorError::from),
                Err(_panicked) => {
                    tracing::error!("project actor panicked during a propagation; restarting");
                    context.stop();
                    Err(ProjectActorError::Fatal)
                }
            },
        ))
    }
}

/// Pushes the stored list (not one carried in the message: a late message never re-applies an
/// older list) to every live sandbox of the project.
async fn propagate(
    store: &Store,
    pusher: &dyn AllowlistPusher,
    message: AllowlistChanged,
) -> Result<AllowlistReport, StoreError> {
    let project = store.get_project(message.org, message.project).await?;
    let mut report = AllowlistReport::default();
    for sandbox in store.list_live_sandboxes_of_project(project.id).await? {
        let Some(worker) = sandbox.worker_id.as_ref() else {
            continue;
        };
        match pusher
            .push(worker, sandbox.id, &project.egress_allowlist)
            .await
        {
            Ok(true) => report.applied += 1,
            Ok(false) => {}
            Err(reason) => report.failed.push((sandbox.id, reason)),
        }
    }
    Ok(report)
}

/// Starts the actor under a supervisor on its own thread and actix system.
pub fn spawn_project_actor(
    store: Store,
    pusher: Arc<dyn AllowlistPusher>,
) -> std::io::Result<Addr<ProjectActor>> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("project-actor".into())
        .spawn(move || {
            let system = System::new();
            system.block_on(async move {
                let address = Supervisor::start(move |_| ProjectActor::new(store, pusher));
                let _ = sender.send(address);
            });
            let _ = system.run();
        })?;
    receiver
        .recv()
        .map_err(|_| std::io::Error::other("the project actor did not start"))
}
