//! `ProxyActor`: the thin actix control shell over the tokio data plane. It turns typed messages
//! (`RegisterSession`, `UpdateSecret`, `AddSecret`, `RemoveSecret`, `UnregisterSession`) into
//! registry changes, forwards data-plane events to the sink the worker gives it (which publishes
//! them on the bus), and reports a small observable state. It holds no policy of its own and must
//! never print a value: messages carrying values rely on `SecretValue`'s redacting `Debug`.

use std::path::PathBuf;
use std::sync::Arc;

use actix::prelude::*;
use osb_proto::SandboxId;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::events::{EventSink, ProxyEvent};
use crate::proxy::SealingProxy;
use crate::registry::RegistryError;
use crate::secret_value::SecretValue;
use crate::session::{SecretSpec, SessionSpec};

/// Open (or replace) a sandbox's session.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct RegisterSession(pub SessionSpec);

/// Replace a secret's value in place (same token) in one sandbox's session.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct UpdateSecret {
    pub sandbox_id: SandboxId,
    pub name: String,
    pub value: SecretValue,
}

/// Add a secret to a session (or replace the one with the same name).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct AddSecret {
    pub sandbox_id: SandboxId,
    pub secret: SecretSpec,
}

/// Remove a secret: its token is refused from the next request on.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct RemoveSecret {
    pub sandbox_id: SandboxId,
    pub name: String,
}

/// Close a sandbox's session.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct UnregisterSession {
    pub sandbox_id: SandboxId,
}

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
}

/// The control shell.
#[derive(Debug)]
pub struct ProxyActor {
    proxy: Arc<SealingProxy>,
    /// Shared so a restarted actor (under `actix::Supervisor`) drains the same channel.
    events: Arc<tokio::sync::Mutex<mpsc::Receiver<ProxyEvent>>>,
    sink: Arc<dyn EventSink>,
    events_forwarded: u64,
}

impl ProxyActor {
    /// `events` is the receiver of the `ChannelSink` the proxy was started with; every event is
    /// forwarded to `sink`.
    pub fn new(
        proxy: Arc<SealingProxy>,
        events: mpsc::Receiver<ProxyEvent>,
        sink: Arc<dyn EventSink>,
    ) -> Self {
        Self {
            proxy,
            events: Arc::new(tokio::sync::Mutex::new(events)),
            sink,
            events_forwarded: 0,
        }
    }
}

impl Actor for ProxyActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let receiver = Arc::clone(&self.events);
        let stream = futures_util::stream::unfold(receiver, |receiver| async move {
            let event = receiver.lock().await.recv().await;
            event.map(|event| (event, receiver))
        });
        ctx.add_stream(stream);
    }
}

impl Supervised for ProxyActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        // Sessions live in the data plane's registry, which outlives the actor: nothing to rebuild.
        tracing::warn!("proxy actor restarting; data plane sessions are kept");
    }
}

impl StreamHandler<ProxyEvent> for ProxyActor {
    fn handle(&mut self, event: ProxyEvent, _ctx: &mut Self::Context) {
        self.events_forwarded += 1;
        self.sink.emit(event);
    }

    fn finished(&mut self, _ctx: &mut Self::Context) {
        tracing::info!("proxy event stream closed");
    }
}

impl Handler<RegisterSession> for ProxyActor {
    type Result = Result<(), RegistryError>;

    fn handle(&mut self, message: RegisterSession, _ctx: &mut Self::Context) -> Self::Result {
        let sandbox_id = message.0.sandbox_id;
        self.proxy.register_session(message.0)?;
        tracing::info!(%sandbox_id, "proxy session registered");
        Ok(())
    }
}

impl Handler<UpdateSecret> for ProxyActor {
    type Result = Result<(), RegistryError>;

    fn handle(&mut self, message: UpdateSecret, _ctx: &mut Self::Context) -> Self::Result {
        self.proxy.registry().update_secret_value(
            message.sandbox_id,
            &message.name,
            message.value,
        )?;
        tracing::info!(sandbox_id = %message.sandbox_id, secret = %message.name, "proxy secret updated");
        Ok(())
    }
}

impl Handler<AddSecret> for ProxyActor {
    type Result = Result<(), RegistryError>;

    fn handle(&mut self, message: AddSecret, _ctx: &mut Self::Context) -> Self::Result {
        let name = message.secret.name.clone();
        self.proxy
            .registry()
            .upsert_secret(message.sandbox_id, message.secret)?;
        tracing::info!(sandbox_id = %message.sandbox_id, secret = %name, "proxy secret added");
        Ok(())
    }
}

impl Handler<RemoveSecret> for ProxyActor {
    type Result = Result<(), RegistryError>;

    fn handle(&mut self, message: RemoveSecret, _ctx: &mut Self::Context) -> Self::Result {
        self.proxy
            .registry()
            .remove_secret(message.sandbox_id, &message.name)?;
        tracing::info!(sandbox_id = %message.sandbox_id, secret = %message.name, "proxy secret removed");
        Ok(())
    }
}

impl Handler<UnregisterSession> for ProxyActor {
    type Result = Result<(), RegistryError>;

    fn handle(&mut self, message: UnregisterSession, _ctx: &mut Self::Context) -> Self::Result {
        self.proxy.registry().unregister(message.sandbox_id)?;
        tracing::info!(sandbox_id = %message.sandbox_id, "proxy session unregistered");
        Ok(())
    }
}

impl Handler<GetObservableState> for ProxyActor {
    type Result = MessageResult<GetObservableState>;

    fn handle(&mut self, _message: GetObservableState, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(ProxyObservableState {
            sandbox_ids: self.proxy.registry().sandbox_ids(),
            requests: self.proxy.metrics().requests(),
            substitutions: self.proxy.metrics().substitutions(),
            events_forwarded: self.events_forwarded,
            ca_cert_path: self.proxy.ca_cert_path().to_owned(),
        })
    }
}
