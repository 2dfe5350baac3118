//! `SecretVaultActor`: the vault's actix shell (DESIGN.md §3). It owns the one capability that
//! sends plaintext values anywhere — fan-out of a changed or deleted secret to the proxies of
//! the project's live sandboxes, through a `SecretPusher` (the mutual-TLS gRPC link) — and
//! runs under `actix::Supervisor`.
//!
//! Fan-outs are serialised per project (`ProjectQueues`): a second change of one project waits
//! for the first to be delivered, so workers see one project's changes in commit order, while
//! other projects' fan-outs run beside it. Each fan-out retries until every live sandbox
//! acknowledged (`fanout`). A panic during a fan-out is answered `VaultActorError::Fatal` and
//! stops the actor on purpose; the supervisor restarts it, and since every message re-reads
//! the store, the restart resyncs from Postgres by construction.
//!
//! `spawn_secret_vault` runs it on a dedicated thread with its own actix system, so callers on
//! any tokio runtime (the gateway, sagas) reach it through its `Addr`. It must never log or
//! return a value: replies are counts and sandbox ids.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use actix::prelude::*;
use futures_util::FutureExt;
use osb_proto::ProjectId;

use crate::delivery::DeliveryPolicy;
use crate::error::VaultError;
use crate::fanout::{FanoutReport, SecretPusher};
use crate::queues::ProjectQueues;
use crate::vault::Vault;

/// Why a fan-out was not done.
#[derive(Debug, thiserror::Error)]
pub enum VaultActorError {
    /// Domain: the vault refused (unknown project, a key problem, the store said no).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Fatal: the actor failed during the fan-out and restarts; the change is committed, and
    /// asking again delivers it (workers apply a version only once).
    #[error("the secret vault actor failed during a fan-out and restarts: ask again to deliver the change")]
    Fatal,
}

/// Push the current value (and allowed hosts) of a secret to every live sandbox of its project.
#[derive(Debug, Message)]
#[rtype(result = "Result<FanoutReport, VaultActorError>")]
pub struct FanOutSecret {
    pub project: ProjectId,
    pub name: String,
}

/// Remove a deleted secret from every live sandbox of its project.
#[derive(Debug, Message)]
#[rtype(result = "Result<FanoutReport, VaultActorError>")]
pub struct FanOutRemoval {
    pub project: ProjectId,
    pub name: String,
}

/// Failpoint: the next fan-out panics mid-flow (after taking its project's turn, before
/// pushing), as a bug would. Nobody sends it in production.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PanicOnNextFanOut;

/// Asks for the observable state.
#[derive(Debug, Message)]
#[rtype(result = "VaultObservableState")]
pub struct GetVaultState;

/// What tests and admin views can see: counts only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VaultObservableState {
    pub restarts: u32,
    pub fanouts: u64,
}

/// The actor.
pub struct SecretVaultActor {
    vault: Arc<Vault>,
    pusher: Arc<dyn SecretPusher>,
    policy: DeliveryPolicy,
    queues: ProjectQueues,
    panic_next: bool,
    restarts: u32,
    fanouts: u64,
}

impl std::fmt::Debug for SecretVaultActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVaultActor")
            .field("policy", &self.policy)
            .field("restarts", &self.restarts)
            .finish_non_exhaustive()
    }
}

impl SecretVaultActor {
    /// An actor over `vault` pushing through `pusher` with the default retry policy.
    pub fn new(vault: Arc<Vault>, pusher: Arc<dyn SecretPusher>) -> Self {
        Self::with_policy(vault, pusher, DeliveryPolicy::default())
    }

    /// An actor with its own retry bounds.
    pub fn with_policy(
        vault: Arc<Vault>,
        pusher: Arc<dyn SecretPusher>,
        policy: DeliveryPolicy,
    ) -> Self {
        Self {
            vault,
            pusher,
            policy,
            queues: ProjectQueues::default(),
            panic_next: false,
            restarts: 0,
            fanouts: 0,
        }
    }

    /// One fan-out, in its project's turn; a panic becomes `Fatal` and restarts the actor.
    fn fan_out(
        &mut self,
        project: ProjectId,
        name: String,
        removal: bool,
    ) -> ResponseActFuture<Self, Result<FanoutReport, VaultActorError>> {
        self.fanouts += 1;
        let (vault, pusher, policy) = (self.vault.clone(), self.pusher.clone(), self.policy);
        let turn = self.queues.turn(project);
        let panic_now = std::mem::take(&mut self.panic_next);
        let work = async move {
            let _turn = turn.await;
            if panic_now {
                panic!("injected panic during a fan-out");
            }
            let pusher = pusher.as_ref();
            if removal {
                vault.fan_out_removal(project, &name, pusher, policy).await
            } else {
                vault.fan_out_secret(project, &name, pusher, policy).await
            }
        };
        Box::pin(AssertUnwindSafe(work).catch_unwind().into_actor(self).map(
            |outcome, actor, ctx| match outcome {
                Ok(result) => result.map_err(VaultActorError::from),
                Err(_panicked) => {
                    tracing::error!("secret vault actor panicked during a fan-out; restarting");
                    actor.queues.forget_idle();
                    ctx.stop();
                    Err(VaultActorError::Fatal)
                }
            },
        ))
    }
}

impl Actor for SecretVaultActor {
    type Context = Context<Self>;
}

impl Supervised for SecretVaultActor {
    fn restarting(&mut self, _context: &mut Context<Self>) {
        self.restarts += 1;
        tracing::warn!(
            restarts = self.restarts,
            "secret vault actor restarted; state is re-read from the store"
        );
    }
}

impl Handler<FanOutSecret> for SecretVaultActor {
    type Result = ResponseActFuture<Self, Result<FanoutReport, VaultActorError>>;

    fn handle(&mut self, message: FanOutSecret, _context: &mut Context<Self>) -> Self::Result {
        self.fan_out(message.project, message.name, false)
    }
}

impl Handler<FanOutRemoval> for SecretVaultActor {
    type Result = ResponseActFuture<Self, Result<FanoutReport, VaultActorError>>;

    fn handle(&mut self, message: FanOutRemoval, _context: &mut Context<Self>) -> Self::Result {
        self.fan_out(message.project, message.name, true)
    }
}

impl Handler<PanicOnNextFanOut> for SecretVaultActor {
    type Result = ();

    fn handle(&mut self, _message: PanicOnNextFanOut, _context: &mut Context<Self>) {
        self.panic_next = true;
    }
}

impl Handler<GetVaultState> for SecretVaultActor {
    type Result = MessageResult<GetVaultState>;

    fn handle(&mut self, _message: GetVaultState, _context: &mut Context<Self>) -> Self::Result {
        MessageResult(VaultObservableState {
            restarts: self.restarts,
            fanouts: self.fanouts,
        })
    }
}

/// Starts the actor under a supervisor on its own thread and actix system; returns its address.
/// The thread lives as long as the process (the system stops when every address is dropped).
pub fn spawn_secret_vault(
    vault: Arc<Vault>,
    pusher: Arc<dyn SecretPusher>,
) -> std::io::Result<Addr<SecretVaultActor>> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("secret-vault".into())
        .spawn(move || {
            let system = System::new();
            system.block_on(async move {
                let address = Supervisor::start(move |_| SecretVaultActor::new(vault, pusher));
                let _ = sender.send(address);
            });
            let _ = system.run();
        })?;
    receiver
        .recv()
        .map_err(|_| std::io::Error::other("the secret vault actor did not start"))
}
