//! The worker's `VmActor`s: one per sandbox, started on the worker's actor system when the
//! sandbox is created (or forked) and forgotten when it is destroyed or its boot failed. The
//! worker service finds a sandbox's actor here and sends it every command for that sandbox, so
//! the actor serialises them; nothing in the worker calls the runtime for one sandbox directly.
//!
//! It must never keep an actor for a sandbox that is gone (a destroyed sandbox's id maps to
//! nothing, so a late command gets "not found") and never start two actors for one id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::Addr;
use osb_proto::{CheckpointId, SandboxId};
use osb_vm::{EventSink, Runtime, SandboxEvent, SandboxSpec, VmActor, VmError};
use tonic::Status;

use super::actor_host::ActorHost;
use super::convert::runtime_status;

/// `sandbox id → VmActor`.
#[derive(Debug)]
pub(crate) struct SandboxActors {
    host: Arc<ActorHost>,
    runtime: Arc<dyn Runtime>,
    actors: Mutex<HashMap<SandboxId, Addr<VmActor>>>,
}

impl SandboxActors {
    pub(crate) fn new(host: Arc<ActorHost>, runtime: Arc<dyn Runtime>) -> Self {
        Self {
            host,
            runtime,
            actors: Mutex::new(HashMap::new()),
        }
    }

    /// The actor of a sandbox being created (or forked from `fork_of`); a replayed create
    /// gets the actor the first one started, which answers with the sandbox it booted.
    /// Must be called on the worker's tokio runtime: the actor runs its work there.
    pub(crate) fn for_new(
        &self,
        spec: SandboxSpec,
        fork_of: Option<CheckpointId>,
    ) -> Addr<VmActor> {
        let mut actors = self.lock();
        if let Some(existing) = actors.get(&spec.id) {
            return existing.clone();
        }
        let id = spec.id;
        let mut actor = VmActor::new(Arc::clone(&self.runtime), spec, Arc::new(ActorEvents));
        if let Some(checkpoint) = fork_of {
            actor = actor.forked_from(checkpoint);
        }
        let address = self.host.start_supervised(move || actor);
        actors.insert(id, address.clone());
        address
    }

    /// The actor of a live sandbox.
    pub(crate) fn get(&self, id: SandboxId) -> Option<Addr<VmActor>> {
        self.lock().get(&id).cloned()
    }

    /// The actor of a live sandbox, or "not found".
    pub(crate) fn require(&self, id: SandboxId) -> Result<Addr<VmActor>, Status> {
        self.get(id)
            .ok_or_else(|| runtime_status(osb_vm::RuntimeError::UnknownSandbox(id)))
    }

    /// Drops the sandbox's actor (destroyed, or its boot failed); the actor stops once no
    /// command holds its address any more.
    pub(crate) fn forget(&self, id: SandboxId) {
        self.lock().remove(&id);
    }

    /// Every sandbox with an actor.
    pub(crate) fn ids(&self) -> Vec<SandboxId> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SandboxId, Addr<VmActor>>> {
        self.actors.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A `VmActor`'s reply as a status: refusals are the caller's to fix, fatal failures are worth
/// a retry once the actor restarted.
pub(crate) fn vm_reply<T>(
    reply: Result<Result<T, VmError>, actix::MailboxError>,
) -> Result<T, Status> {
    match reply {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(VmError::Runtime(error))) => Err(runtime_status(error)),
        Ok(Err(VmError::Refused(refusal))) if refusal.state == "destroyed" => {
            Err(Status::not_found(refusal.to_string()))
        }
        Ok(Err(VmError::Refused(refusal))) => Err(Status::failed_precondition(refusal.to_string())),
        Ok(Err(fatal @ VmError::Fatal { .. })) => Err(Status::unavailable(fatal.to_string())),
        Err(_) => Err(Status::unavailable(
            "the sandbox's actor is not running: the worker is shutting down",
        )),
    }
}

/// Lifecycle events of the actors: the control plane's sagas publish the user-facing ones
/// (they know the org and the outcome), so the worker only keeps them in its debug log.
#[derive(Debug)]
struct ActorEvents;

impl EventSink for ActorEvents {
    fn publish(&self, event: SandboxEvent) {
        tracing::debug!(sandbox_id = %event.sandbox_id, event = event.name(), "sandbox event");
    }
}
