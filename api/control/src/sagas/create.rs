//! The create saga (also forks and boots from golden snapshots):
//! `resolve_project → place_on_worker → seal_secrets → boot_sandbox → register_session →
//! mark_running`. Each step is idempotent under the sandbox id; each undo treats "nothing
//! there" as success. The sandbox row is written first (`creating`) and marked `failed` by the
//! unwind, so a failed create is visible and leaves nothing running. `register_session` is
//! the only step that touches plaintext values: they go from the vault straight into the
//! `StageValues` request on the mutual-TLS link; the steps that act on the worker are commands
//! on the bus (`commands`, ADR 0020).

use async_trait::async_trait;
use osb_bus::SagaAction;
use osb_placement::PlacementRequest;
use osb_proto::SealedToken;
use osb_saga::{SagaDefinition, SagaError, SagaStep, StepError, StepInputs, StepName, StepUndo};
use osb_store::{NewSandbox, SandboxStatus, StoreError};
use serde_json::{json, Value};
use tracing::Instrument;

use super::params::{
    BootFrom, Booted, CreateParams, Done, Placed, Registered, Resolved, Sealed, SealedName,
};
use crate::commands::{self, StepCommand};
use crate::events::{transition_announcing, Announcement};
use crate::plane::{store_failed, to_output, ControlPlane};
use osb_bus::command::{self as cmd, CommandPayload};
use osb_grpc::proto as wire;

/// The saga kind in the log.
pub const CREATE_SAGA: &str = "sandbox_create";

/// The create saga's steps, each typed by the output it records.
pub const RESOLVE_PROJECT: StepName<Resolved> = StepName::new("resolve_project");
pub const PLACE_ON_WORKER: StepName<Placed> = StepName::new("place_on_worker");
pub const SEAL_SECRETS: StepName<Sealed> = StepName::new("seal_secrets");
pub const BOOT_SANDBOX: StepName<Booted> = StepName::new("boot_sandbox");
pub const REGISTER_SESSION: StepName<Registered> = StepName::new("register_session");
pub const MARK_RUNNING: StepName<Done> = StepName::new("mark_running");

/// The create saga's definition.
pub fn create_saga() -> Result<SagaDefinition<ControlPlane>, SagaError> {
    SagaDefinition::new(
        CREATE_SAGA,
        vec![
            Box::new(ResolveProject),
            Box::new(PlaceOnWorker),
            Box::new(SealSecrets),
            Box::new(BootSandbox),
            Box::new(RegisterSession),
            Box::new(MarkRunning),
        ],
    )
}

struct ResolveProject;

#[async_trait]
impl SagaStep<ControlPlane> for ResolveProject {
    fn name(&self) -> &'static str {
        RESOLVE_PROJECT.as_str()
    }

    async fn run(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<Value, StepError> {
        let p: CreateParams = inputs.params()?;
        let allowlist = async {
            let Some(project) = p.project_id else {
                return Ok(Vec::new());
            };
            let found = plane
                .projects
                .send(osb_project::GetProject {
                    org: p.org_id,
                    project,
                })
                .await
                .map_err(|error| StepError::new(format!("the project actor: {error}")))?
                .map_err(|error| match error {
                    StoreError::NotFound(_) => StepError::new(format!(
                        "project {project} was deleted before the sandbox could start"
                    )),
                    other => store_failed(other),
                })?;
            Ok::<_, StepError>(found.egress_allowlist)
        };
        // Two independent reads: one round trip's wait instead of two (ADR 0034).
        let (egress_allowlist, existing) =
            tokio::join!(allowlist, plane.store.find_sandbox(p.sandbox_id));
        let egress_allowlist = egress_allowlist?;
        match existing {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => {
                plane
                    .store
                    .insert_sandbox(NewSandbox {
                        id: p.sandbox_id,
                        org_id: p.org_id,
                        project_id: p.project_id,
                        project_name: p.project_name.clone(),
                        template: p.template.clone(),
                        cpu_count: p.cpu_count,
                        memory_mb: p.memory_mb,
                        timeout_sec: p.timeout_sec,
                        metadata: p.metadata.clone(),
                    })
                    .await
                    .map_err(store_failed)?;
            }
            Err(other) => return Err(store_failed(other)),
        }
        to_output(&Resolved { egress_allowlist })
    }

    fn undo(&self) -> Option<&dyn StepUndo<ControlPlane>> {
        Some(self)
    }
}

#[async_trait]
impl StepUndo<ControlPlane> for ResolveProject {
    async fn undo(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<(), StepError> {
        let p: CreateParams = inputs.params()?;
        mark_failed(plane, p.sandbox_id, "creation was undone").await
    }
}

/// Marks a sandbox that is still `creating` as `failed` (nothing to do otherwise).
async fn mark_failed(
    plane: &ControlPlane,
    sandbox: osb_proto::SandboxId,
    reason: &str,
) -> Result<(), StepError> {
    match plane.store.find_sandbox(sandbox).await {
        Ok(row) if row.status == SandboxStatus::Creating => {
            match plane
                .store
                .transition_sandbox(
                    sandbox,
                    row.generation,
                    SandboxStatus::Failed,
                    None,
                    Some(reason),
                )
                .await
            {
                Ok(_) | Err(StoreError::Stale(_)) => Ok(()),
                Err(other) => Err(store_failed(other)),
            }
        }
        Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
        Err(other) => Err(store_failed(other)),
    }
}

struct PlaceOnWorker;

#[async_trait]
impl SagaStep<ControlPlane> for PlaceOnWorker {
    fn name(&self) -> &'static str {
        PLACE_ON_WORKER.as_str()
    }

    async fn run(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<Value, StepError> {
        let p: CreateParams = inputs.params()?;
        // The org's opt-in is read beside the row (one round trip's wait instead of two); only
        // a fresh placement uses it.
        let (row, org) = tokio::join!(
            plane.store.find_sandbox(p.sandbox_id),
            plane.store.get_org(p.org_id)
        );
        let row = row.map_err(store_failed)?;
        let worker = match (&p.boot, row.worker_id) {
            // A replay keeps the first choice.
            (_, Some(worker)) => worker,
            (BootFrom::Checkpoint { worker, .. }, None) => {
                if !plane.links.is_live(worker) {
                    return Err(StepError::new(format!(
                        "worker {worker}, which holds the checkpoint, is not live; start it again or use another checkpoint"
                    )));
                }
                worker.clone()
            }
            (BootFrom::Fresh, None) => {
                let placement = plane.links.placement().ok_or_else(|| {
                    StepError::new(
                        "no placement service: this control plane cannot choose a worker",
                    )
                })?;
                // A development worker serves only orgs that opted in (ADR 0025).
                let allow_development = org.map_err(store_failed)?.development_runtime;
                let request = PlacementRequest {
                    cpu_count: p.cpu_count,
                    memory_mb: u64::from(p.memory_mb),
                    runtime: p.runtime,
                    allow_development,
                };
                // A control plane that just started has not heard every worker's heartbeat
                // yet, and room freed by a destroy shows in the worker's next heartbeat: give
                // "no worker" / "no room" a few seconds before refusing.
                let mut attempts = 0;
                loop {
                    match placement.place(request) {
                        Ok((_, name, _)) => break name,
                        Err(
                            osb_placement::PlacementError::NoLiveWorker
                            | osb_placement::PlacementError::NoRuntime { .. }
                            | osb_placement::PlacementError::NoCapacity { .. },
                        ) if attempts < 15 => {
                            attempts += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        }
                        Err(error) => return Err(StepError::new(error.to_string())),
                    }
                }
            }
        };
        plane
            .store
            .set_sandbox_worker(p.sandbox_id, Some(&worker))
            .await
            .map_err(store_failed)?;
        to_output(&Placed { worker })
    }

    fn undo(&self) -> Option<&dyn StepUndo<ControlPlane>> {
        Some(self)
    }
}

#[async_trait]
impl StepUndo<ControlPlane> for PlaceOnWorker {
    async fn undo(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<(), StepError> {
        let p: CreateParams = inputs.params()?;
        match plane.store.find_sandbox(p.sandbox_id).await {
            Ok(row) if row.status == SandboxStatus::Creating => plane
                .store
                .set_sandbox_worker(p.sandbox_id, None)
                .await
                .map_err(store_failed),
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(other) => Err(store_failed(other)),
        }
    }
}

struct SealSecrets;

#[async_trait]
impl SagaStep<ControlPlane> for SealSecrets {
    fn name(&self) -> &'static str {
        SEAL_SECRETS.as_str()
    }

    async fn run(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<Value, StepError> {
        let p: CreateParams = inputs.params()?;
        let Some(project) = p.project_id else {
            return to_output(&Sealed::default());
        };
        let records = plane
            .store
            .list_secrets(project)
            .await
            .map_err(store_failed)?;
        let secrets = records
            .into_iter()
            .map(|record| SealedName {
                name: record.name,
                token: SealedToken::from_random_bytes(rand::random()).to_string(),
            })
            .collect();
        to_output(&Sealed { secrets })
    }

    fn undo(&self) -> Option<&dyn StepUndo<ControlPlane>> {
        // Minting touched nothing outside the log; the tokens die with the session.
        None
    }
}

struct BootSandbox;

impl BootSandbox {
    /// The boot command: ids, sizes and the allowlist; envs and tokens are staged apart.
    fn command(
        p: &CreateParams,
        resolved: &Resolved,
        staged_key: Option<String>,
    ) -> CommandPayload {
        CommandPayload::BootSandbox(cmd::BootSandbox {
            sandbox_id: p.sandbox_id,
            project_id: p.project_id,
            template: p.template.clone(),
            egress_allowlist: resolved.egress_allowlist.clone(),
            cpu_count: p.cpu_count,
            memory_mb: p.memory_mb,
            timeout_sec: p.timeout_sec,
            runtime: p.effective_runtime().as_str().to_owned(),
            boot: match &p.boot {
                BootFrom::Fresh => cmd::BootFrom::Fresh,
                BootFrom::Checkpoint { checkpoint_id, .. } => cmd::BootFrom::Checkpoint {
                    checkpoint_id: *checkpoint_id,
                },
            },
            staged_key,
        })
    }
}

#[async_trait]
impl SagaStep<ControlPlane> for BootSandbox {
    fn name(&self) -> &'static str {
        BOOT_SANDBOX.as_str()
    }

    async fn run(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<Value, StepError> {
        let p: CreateParams = inputs.params()?;
        let resolved = inputs.output(RESOLVE_PROJECT)?;
        let placed = inputs.output(PLACE_ON_WORKER)?;
        let sealed = inputs.output(SEAL_SECRETS)?;
        let step = StepCommand {
            worker: &placed.worker,
            saga: inputs.saga(),
            step: BOOT_SANDBOX.as_str(),
            action: SagaAction::Do,
            what: "boot the sandbox",
        };
        // User envs and sealed tokens go over the link, never on the bus.
        let staged_key = if p.envs.is_empty() && sealed.secrets.is_empty() {
            None
        } else {
            let sealed_envs = sealed
                .secrets
                .iter()
                .map(|secret| wire::SealedEnv {
                    name: secret.name.clone(),
                    sealed_token: secret.token.clone(),
                })
                .collect();
            let user_envs = p.envs.clone().into_iter().collect();
            Some(
                commands::stage_values(
                    plane,
                    &step,
                    p.sandbox_id,
                    user_envs,
                    sealed_envs,
                    Vec::new(),
                )
                .await?,
            )
        };
        let created: cmd::BootedOutput =
            commands::send(plane, &step, Self::command(&p, &resolved, staged_key)).await?;
        // The worker names its namespace slot by isolation (`netns` or `dev`); a sandbox it
        // ran with isolation is on the runtime this step asked for.
        let runtime = if created.runtime == osb_proto::DEV_RUNTIME_ADVERTISED {
            created.runtime
        } else {
            p.effective_runtime().as_str().to_owned()
        };
        plane
            .store
            .set_sandbox_runtime(p.sandbox_id, &runtime, &created.egress)
            .await
            .map_err(store_failed)?;
        to_output(&Booted {
            source_address: created.source_address,
            runtime,
            egress: created.egress,
        })
    }

    fn undo(&self) -> Option<&dyn StepUndo<ControlPlane>> {
        Some(self)
    }
}

#[async_trait]
impl StepUndo<ControlPlane> for BootSandbox {
    async fn undo(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<(), StepError> {
        let p: CreateParams = inputs.params()?;
        let Some(placed) = inputs.output_if_any(PLACE_ON_WORKER) else {
            return Ok(());
        };
        let step = StepCommand {
            worker: &placed.worker,
            saga: inputs.saga(),
            step: BOOT_SANDBOX.as_str(),
            action: SagaAction::Undo,
            what: "destroy the sandbox",
        };
        let payload = CommandPayload::DestroySandbox(cmd::DestroySandbox {
            sandbox_id: p.sandbox_id,
        });
        let _: cmd::ExistedOutput = commands::send(plane, &step, payload).await?;
        Ok(())
    }
}

struct RegisterSession;

#[async_trait]
impl SagaStep<ControlPlane> for RegisterSession {
    fn name(&self) -> &'static str {
        REGISTER_SESSION.as_str()
    }

    async fn run(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<Value, StepError> {
        let p: CreateParams = inputs.params()?;
        let resolved = inputs.output(RESOLVE_PROJECT)?;
        let placed = inputs.output(PLACE_ON_WORKER)?;
        let sealed = inputs.output(SEAL_SECRETS)?;
        let booted = inputs.output(BOOT_SANDBOX)?;
        let step = StepCommand {
            worker: &placed.worker,
            saga: inputs.saga(),
            step: REGISTER_SESSION.as_str(),
            action: SagaAction::Do,
            what: "register the proxy session",
        };
        let registered = super::session::register(
            plane,
            &step,
            p.sandbox_id,
            p.project_id,
            &sealed,
            &booted.source_address,
            &resolved.egress_allowlist,
        )
        .await?;
        // An update committed while the session was being registered may have been fanned out
        // before the worker knew the session: push anything newer than what was registered.
        super::session::catch_up(
            plane,
            &placed.worker,
            p.sandbox_id,
            p.project_id,
            &registered,
        )
        .instrument(tracing::info_span!("session.catch_up"))
        .await?;
        to_output(&Registered {
            secrets: registered.len(),
        })
    }

    fn undo(&self) -> Option<&dyn StepUndo<ControlPlane>> {
        Some(self)
    }
}

#[async_trait]
impl StepUndo<ControlPlane> for RegisterSession {
    async fn undo(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<(), StepError> {
        let p: CreateParams = inputs.params()?;
        let Some(placed) = inputs.output_if_any(PLACE_ON_WORKER) else {
            return Ok(());
        };
        let step = StepCommand {
            worker: &placed.worker,
            saga: inputs.saga(),
            step: REGISTER_SESSION.as_str(),
            action: SagaAction::Undo,
            what: "drop the proxy session",
        };
        let payload = CommandPayload::UnregisterSession(cmd::UnregisterSession {
            sandbox_id: p.sandbox_id,
        });
        let _: cmd::ExistedOutput = commands::send(plane, &step, payload).await?;
        Ok(())
    }
}

struct MarkRunning;

#[async_trait]
impl SagaStep<ControlPlane> for MarkRunning {
    fn name(&self) -> &'static str {
        MARK_RUNNING.as_str()
    }

    fn irreversible(&self) -> bool {
        true
    }

    async fn run(&self, plane: &ControlPlane, inputs: &StepInputs) -> Result<Value, StepError> {
        let p: CreateParams = inputs.params()?;
        let placed = inputs.output(PLACE_ON_WORKER)?;
        let row = plane
            .store
            .find_sandbox(p.sandbox_id)
            .await
            .map_err(store_failed)?;
        // The transition and its `created` event commit together; a rerun after a crash finds
        // the sandbox running and its event already recorded.
        if row.status != SandboxStatus::Running {
            transition_announcing(
                plane,
                (p.sandbox_id, row.generation),
                SandboxStatus::Running,
                (Some(&placed.worker), None),
                Announcement {
                    org: p.org_id,
                    what: "created",
                    dedupe: "0",
                    fields: json!({ "status": "running", "workerID": placed.worker, "projectId": p.project_id }),
                },
            )
            .await
            .map_err(store_failed)?;
        }
        to_output(&Done {})
    }

    fn undo(&self) -> Option<&dyn StepUndo<ControlPlane>> {
        None
    }
}
