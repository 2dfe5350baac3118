//! `ProxyActor`: the worker's one control shell over the tokio data plane (DESIGN.md §3). Every
//! change of the proxy's sessions goes through it — register/unregister a session, a versioned
//! secret update, add/remove a secret, an allowlist change — so they are applied one at a time
//! in arrival order by the pure core `control::SessionControl`. It also forwards data-plane
//! events to a sink when given their channel, and reports a small observable state.
//!
//! Under `actix::Supervisor`: a panic while handling a message is caught, answered as
//! `ProxyActorError::Fatal`, and stops the actor on purpose so the supervisor restarts it. The
//! sessions (and the versions they hold) live in the registry shared with the data plane, so a
//! restart drops no live session and resyncs by reading it. It holds no policy of its own and
//! must never print a value: messages carrying values rely on `SecretValue`'s redacting `Debug`,
//! and a panic's payload is never repeated (it could quote anything).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use osb_proto::{HostPattern, SandboxId};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::control::SessionControl;
use crate::events::{EventSink, ProxyEvent};
use crate::proxy::SealingProxy;
use crate::registry::{RegistryError, SecretUpdate};
use crate::secret_value::SecretValue;
use crate::session::{SecretSpec, SessionSpec};

/// Why a command was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyActorError {
    /// Domain: the change was refused as asked and nothing changed; the caller should fix it.
    #[error(transparent)]
    Refused(#[from] RegistryError),
    /// Fatal: the actor failed while handling the command and restarts. Sessions are kept; the
    /// change applied wholly or not at all, and every command is safe to retry.
    #[error(
        "the proxy control actor failed while handling {command} and restarts: retry the command"
    )]
    Fatal { command: &'static str },
}

/// Open (or replace) a sandbox's session. Replies with the number of secrets it holds.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, ProxyActorError>")]
pub struct RegisterSession(pub SessionSpec);

/// Replace a secret's value in place (same token) when `version` is newer than the held one;
/// `allowed_hosts: Some(..)` replaces its hosts too. Replies whether it applied.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, ProxyActorError>")]
pub struct UpdateSecret {
    pub sandbox_id: SandboxId,
    pub name: String,
    pub version: u64,
    pub value: SecretValue,
    pub allowed_hosts: Option<Vec<HostPattern>>,
}

/// Add a secret to a session (or replace the one with the same name).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ProxyActorError>")]
pub struct AddSecret {
    pub sandbox_id: SandboxId,
    pub secret: SecretSpec,
}

/// Remove a secret: its token is refused from the next request on. Replies whether it was held.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, ProxyActorError>")]
pub struct RemoveSecret {
    pub sandbox_id: SandboxId,
    pub name: String,
}

/// Replace a session's egress allowlist. Replies whether the sandbox has a session.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, ProxyActorError>")]
pub struct SetEgressAllowlist {
    pub sandbox_id: SandboxId,
    pub allowlist: Vec<HostPattern>,
}

/// Close a sandbox's session. Replies whether there was one.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, ProxyActorError>")]
pub struct UnregisterSession {
    pub sandbox_id: SandboxId,
}

/// Failpoint: panic inside the handler, as a bug would, so tests can watch the supervisor
/// restart the actor mid-flow. Harmless in production: nobody sends it.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ProxyActorError>")]
pub struct InjectPanic;

/// Ask for the observable state.
#[derive(Debug, Message)]
#[rtype(result = "ProxyObservableState")]
pub struct GetObservableState;

/// What tests and admin views may see: no values, no tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyObservableState {
    pub sandbox_ids: Vec<SandboxId>,
    pub requests: u64,
    pub substitutions: u64,
    pub events_forwarded: u64,
    pub ca_cert_path: PathBuf,
    /// How many times the supervisor restarted the actor.
    pub restarts: u32,
}

type SharedEvents = Arc<tokio::sync::Mutex<mpsc::Receiver<ProxyEvent>>>;

/// The control shell.
#[derive(Debug)]
pub struct ProxyActor {
    proxy: Arc<SealingProxy>,
    control: SessionControl,
    /// Shared so a restarted actor (under `actix::Supervisor`) drains the same channel.
    events: Option<(SharedEvents, Arc<dyn EventSink>)>,
    events_forwarded: u64,
    restarts: u32,
}

impl ProxyActor {
    /// An actor that also forwards every event of `events` (the receiver of the `ChannelSink`
    /// the proxy was started with) to `sink`.
    pub fn new(
        proxy: Arc<SealingProxy>,
        events: mpsc::Receiver<ProxyEvent>,
        sink: Arc<dyn EventSink>,
    ) -> Self {
        let mut actor = Self::control_only(proxy);
        actor.events = Some((Arc::new(tokio::sync::Mutex::new(events)), sink));
        actor
    }

    /// An actor that only steers sessions (the worker forwards events itself).
    pub fn control_only(proxy: Arc<SealingProxy>) -> Self {
        let control = SessionControl::new(Arc::clone(proxy.registry()));
        Self {
            proxy,
            control,
            events: None,
            events_forwarded: 0,
            restarts: 0,
        }
    }

    /// Runs `change` on the core; a panic becomes `Fatal` and stops the actor so the supervisor
    /// restarts it.
    fn guarded<T>(
        &mut self,
        ctx: &mut Context<Self>,
        command: &'static str,
        change: impl FnOnce(&SessionControl) -> Result<T, RegistryError>,
    ) -> Result<T, ProxyActorError> {
        match catch_unwind(AssertUnwindSafe(|| change(&self.control))) {
            Ok(result) => result.map_err(ProxyActorError::from),
            Err(_payload) => {
                tracing::error!(command, "proxy control actor panicked; restarting it");
                ctx.stop();
                Err(ProxyActorError::Fatal { command })
            }
        }
    }
}

impl Actor for ProxyActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let Some((receiver, _)) = &self.events else {
            return;
        };
        let receiver = Arc::clone(receiver);
        let stream = futures_util::stream::unfold(receiver, |receiver| async move {
            let event = receiver.lock().await.recv().await;
            event.map(|event| (event, receiver))
        });
        ctx.add_stream(stream);
    }
}

impl Supervised for ProxyActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.restarts += 1;
        // Restart is how we resync: the sessions and their versions are in the registry, which
        // outlives the actor, so the view is re-read from there rather than rebuilt.
        let sessions = self.control.sandbox_ids().len();
        tracing::warn!(
            restarts = self.restarts,
            sessions,
            "proxy control actor restarting; data plane sessions are kept"
        );
    }
}

impl StreamHandler<ProxyEvent> for ProxyActor {
    fn handle(&mut self, event: ProxyEvent, _ctx: &mut Self::Context) {
        if let Some((_, sink)) = &self.events {
            self.events_forwarded += 1;
            sink.emit(event);
        }
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {
        tracing::info!("proxy event stream closed");
    }
}

impl Handler<RegisterSession> for ProxyActor {
    type Result = Result<usize, ProxyActorError>;

    fn handle(&mut self, message: RegisterSession, ctx: &mut Self::Context) -> Self::Result {
        let sandbox_id = message.0.sandbox_id;
        let count = self.guarded(ctx, "register_session", |core| core.register(message.0))?;
        tracing::info!(%sandbox_id, secrets = count, "proxy session registered");
        Ok(count)
    }
}

impl Handler<UpdateSecret> for ProxyActor {
    type Result = Result<bool, ProxyActorError>;

    fn handle(&mut self, message: UpdateSecret, ctx: &mut Self::Context) -> Self::Result {
        let UpdateSecret {
            sandbox_id,
            name,
            version,
            value,
            allowed_hosts,
        } = message;
        let update = SecretUpdate {
            name: name.clone(),
            version,
            value,
            allowed_hosts,
        };
        let applied = self.guarded(ctx, "update_secret", |core| {
            core.update_secret(sandbox_id, update)
        })?;
        tracing::info!(%sandbox_id, secret = %name, version, applied, "proxy secret update");
        Ok(applied)
    }
}

impl Handler<AddSecret> for ProxyActor {
    type Result = Result<(), ProxyActorError>;

    fn handle(&mut self, message: AddSecret, ctx: &mut Self::Context) -> Self::Result {
        let AddSecret { sandbox_id, secret } = message;
        let name = secret.name.clone();
        self.guarded(ctx, "add_secret", |core| {
            core.registry().upsert_secret(sandbox_id, secret)
        })?;
        tracing::info!(%sandbox_id, secret = %name, "proxy secret added");
        Ok(())
    }
}

impl Handler<RemoveSecret> for ProxyActor {
    type Result = Result<bool, ProxyActorError>;

    fn handle(&mut self, message: RemoveSecret, ctx: &mut Self::Context) -> Self::Result {
        let RemoveSecret { sandbox_id, name } = message;
        let existed = self.guarded(ctx, "remove_secret", |core| {
            core.remove_secret(sandbox_id, &name)
        })?;
        tracing::info!(%sandbox_id, secret = %name, existed, "proxy secret removed");
        Ok(existed)
    }
}

impl Handler<SetEgressAllowlist> for ProxyActor {
    type Result = Result<bool, ProxyActorError>;

    fn handle(&mut self, message: SetEgressAllowlist, ctx: &mut Self::Context) -> Self::Result {
        let SetEgressAllowlist {
            sandbox_id,
            allowlist,
        } = message;
        let entries = allowlist.len();
        let applied = self.guarded(ctx, "set_egress_allowlist", |core| {
            core.set_egress_allowlist(sandbox_id, allowlist)
        })?;
        tracing::info!(%sandbox_id, entries, applied, "proxy allowlist replaced");
        Ok(applied)
    }
}

impl Handler<UnregisterSession> for ProxyActor {
    type Result = Result<bool, ProxyActorError>;

    fn handle(&mut self, message: UnregisterSession, ctx: &mut Self::Context) -> Self::Result {
        let sandbox_id = message.sandbox_id;
        let existed = self.guarded(ctx, "unregister_session", |core| {
            core.unregister(sandbox_id)
        })?;
        tracing::info!(%sandbox_id, existed, "proxy session unregistered");
        Ok(existed)
    }
}

impl Handler<InjectPanic> for ProxyActor {
    type Result = Result<(), ProxyActorError>;

    fn handle(&mut self, _message: InjectPanic, ctx: &mut Self::Context) -> Self::Result {
        self.guarded(ctx, "inject_panic", |_| -> Result<(), RegistryError> {
            panic!("injected panic in the proxy control actor")
        })
    }
}

impl Handler<GetObservableState> for ProxyActor {
    type Result = MessageResult<GetObservableState>;

    fn handle(&mut self, _message: GetObservableState, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(ProxyObservableState {
            sandbox_ids: self.control.sandbox_ids(),
            requests: self.proxy.metrics().requests(),
            substitutions: self.proxy.metrics().substitutions(),
            events_forwarded: self.events_forwarded,
            ca_cert_path: self.proxy.ca_cert_path().to_owned(),
            restarts: self.restarts,
        })
    }
}
