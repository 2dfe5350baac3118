//! The command envelope and one typed payload per verb. Payloads name things (sandbox,
//! checkpoint, template, secret names, host patterns) and point at staged values by key; they
//! never hold a secret value, a sealed token or a user environment value.

use osb_proto::{CheckpointId, ProjectId, SagaId, SandboxId};
use serde::{Deserialize, Serialize};

use crate::headers::{idempotency_key, SagaAction};

/// One saga step sent to one worker. `key` is `{saga_id}:{step}:{do|undo}` and is what the
/// worker's exactly-once record is keyed by (ADR 0021).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerCommand {
    pub saga: SagaId,
    pub step: String,
    pub action: CommandAction,
    pub key: String,
    pub payload: CommandPayload,
}

/// `do` or `undo`, as it travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandAction {
    Do,
    Undo,
}

impl From<SagaAction> for CommandAction {
    fn from(action: SagaAction) -> Self {
        match action {
            SagaAction::Do => CommandAction::Do,
            SagaAction::Undo => CommandAction::Undo,
        }
    }
}

impl From<CommandAction> for SagaAction {
    fn from(action: CommandAction) -> Self {
        match action {
            CommandAction::Do => SagaAction::Do,
            CommandAction::Undo => SagaAction::Undo,
        }
    }
}

impl WorkerCommand {
    /// A command for `step` of `saga`, keyed `{saga}:{step}:{do|undo}`.
    pub fn new(saga: SagaId, step: &str, action: SagaAction, payload: CommandPayload) -> Self {
        Self {
            saga,
            step: step.to_owned(),
            action: action.into(),
            key: idempotency_key(saga, step, action),
            payload,
        }
    }

    /// The verb (the last token of the command's subject).
    pub fn verb(&self) -> &'static str {
        self.payload.verb()
    }
}

/// What the worker is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "snake_case")]
pub enum CommandPayload {
    BootSandbox(BootSandbox),
    DestroySandbox(DestroySandbox),
    RegisterSession(RegisterSession),
    UnregisterSession(UnregisterSession),
    Checkpoint(CheckpointSandbox),
    DeleteCheckpoint(DeleteCheckpoint),
    Restore(RestoreSandbox),
}

impl CommandPayload {
    /// The verb token of this payload.
    pub fn verb(&self) -> &'static str {
        match self {
            CommandPayload::BootSandbox(_) => "boot_sandbox",
            CommandPayload::DestroySandbox(_) => "destroy_sandbox",
            CommandPayload::RegisterSession(_) => "register_session",
            CommandPayload::UnregisterSession(_) => "unregister_session",
            CommandPayload::Checkpoint(_) => "checkpoint",
            CommandPayload::DeleteCheckpoint(_) => "delete_checkpoint",
            CommandPayload::Restore(_) => "restore",
        }
    }

    /// The key of the values staged for this command over the value channel, if any.
    pub fn staged_key(&self) -> Option<&str> {
        match self {
            CommandPayload::BootSandbox(boot) => boot.staged_key.as_deref(),
            CommandPayload::RegisterSession(register) => register.staged_key.as_deref(),
            _ => None,
        }
    }
}

/// Where a booted sandbox's writable layer starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum BootFrom {
    Fresh,
    /// A fork: a copy of this checkpoint's layer (fresh tokens).
    #[serde(rename_all = "camelCase")]
    Checkpoint {
        checkpoint_id: CheckpointId,
    },
}

/// Boot a sandbox. Its user envs and sealed envs were staged over the value channel under
/// `staged_key`; the worker refuses the command when nothing is staged there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootSandbox {
    pub sandbox_id: SandboxId,
    pub project_id: Option<ProjectId>,
    pub template: String,
    pub egress_allowlist: Vec<String>,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u32,
    pub timeout_sec: u32,
    /// The runtime the placement chose (`netns`, `microvm`; empty: netns).
    #[serde(default)]
    pub runtime: String,
    pub boot: BootFrom,
    /// `None` when there was nothing to stage (no envs at all).
    pub staged_key: Option<String>,
}

/// Destroy a sandbox (session first, then namespace, rules, layer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestroySandbox {
    pub sandbox_id: SandboxId,
}

/// Register a sandbox's proxy session from the values staged under `staged_key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterSession {
    pub sandbox_id: SandboxId,
    pub source_address: String,
    pub egress_allowlist: Vec<String>,
    /// The secret names the session is expected to hold (names only).
    pub secret_names: Vec<String>,
    /// `None` when the session holds no secret.
    pub staged_key: Option<String>,
}

/// Drop a sandbox's proxy session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnregisterSession {
    pub sandbox_id: SandboxId,
}

/// Checkpoint a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointSandbox {
    pub sandbox_id: SandboxId,
}

/// Remove a checkpoint: the named one, or (without an id) the one the command keyed
/// `made_under` produced (an undo whose action ran but whose output was never logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteCheckpoint {
    pub checkpoint_id: Option<CheckpointId>,
    pub made_under: Option<String>,
}

/// Restore a sandbox in place from one of its checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSandbox {
    pub sandbox_id: SandboxId,
    pub checkpoint_id: CheckpointId,
}

/// Output of `boot_sandbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BootedOutput {
    pub source_address: String,
    pub runtime: String,
    /// `enforced`, `cooperative` or `unknown`.
    pub egress: String,
}

/// Output of the verbs that say whether the thing was there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExistedOutput {
    pub existed: bool,
}

/// Output of `register_session`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredOutput {
    pub secrets: u32,
}

/// Output of `checkpoint`: the checkpoint's id and its size on the worker's disk (a size, not
/// a value; the org's checkpoint quota counts it — ADR 0032). `None` in outcomes recorded
/// before workers measured their checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointOutput {
    pub checkpoint_id: CheckpointId,
    #[serde(default)]
    pub size_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One command of every verb, built from ids and names only.
    pub(crate) fn every_verb(saga: SagaId) -> Vec<WorkerCommand> {
        let sandbox = SandboxId::new();
        let checkpoint = CheckpointId::new();
        let staged = idempotency_key(saga, "boot_sandbox", SagaAction::Do);
        let payloads = vec![
            CommandPayload::BootSandbox(BootSandbox {
                sandbox_id: sandbox,
                project_id: Some(ProjectId::new()),
                template: "host-system".into(),
                egress_allowlist: vec!["api.llm.test".into()],
                cpu_count: 1,
                memory_mb: 256,
                timeout_sec: 60,
                runtime: "microvm".into(),
                boot: BootFrom::Checkpoint {
                    checkpoint_id: checkpoint,
                },
                staged_key: Some(staged.clone()),
            }),
            CommandPayload::DestroySandbox(DestroySandbox {
                sandbox_id: sandbox,
            }),
            CommandPayload::RegisterSession(RegisterSession {
                sandbox_id: sandbox,
                source_address: "100.64.1.2".into(),
                egress_allowlist: vec!["*.llm.test".into()],
                secret_names: vec!["LLM_KEY".into()],
                staged_key: Some(staged),
            }),
            CommandPayload::UnregisterSession(UnregisterSession {
                sandbox_id: sandbox,
            }),
            CommandPayload::Checkpoint(CheckpointSandbox {
                sandbox_id: sandbox,
            }),
            CommandPayload::DeleteCheckpoint(DeleteCheckpoint {
                checkpoint_id: None,
                made_under: Some(idempotency_key(saga, "checkpoint", SagaAction::Do)),
            }),
            CommandPayload::Restore(RestoreSandbox {
                sandbox_id: sandbox,
                checkpoint_id: checkpoint,
            }),
        ];
        payloads
            .into_iter()
            .map(|payload| WorkerCommand::new(saga, "step", SagaAction::Do, payload))
            .collect()
    }

    #[test]
    fn every_verb_round_trips_with_its_key_and_tag() {
        let saga = SagaId::new();
        for command in every_verb(saga) {
            assert_eq!(command.key, format!("{saga}:step:do"));
            let text = serde_json::to_string(&command).unwrap();
            assert!(
                text.contains(&format!("\"verb\":\"{}\"", command.verb())),
                "{text}"
            );
            let back: WorkerCommand = serde_json::from_str(&text).unwrap();
            assert_eq!(back, command);
        }
    }

    #[test]
    fn a_canary_value_staged_beside_a_command_never_enters_it() {
        // The values of a boot and a session go over the value channel; what the control plane
        // builds for the bus from the same inputs must not contain them. The payload types have
        // no field that could: `SecretValue` has no `Serialize`, and there is no env map.
        let canary = "osb-canary-value-7f3a9c";
        let secret = osb_proto::SecretValue::from_string(canary.to_owned());
        let saga = SagaId::new();
        for command in every_verb(saga) {
            let bytes = crate::Envelope::new(COMMAND_KIND_FOR_TEST, command, None)
                .to_bytes()
                .unwrap();
            let text = String::from_utf8(bytes).unwrap();
            assert!(!text.contains(canary), "{text}");
        }
        assert_eq!(secret.expose_bytes(), canary.as_bytes());
    }

    const COMMAND_KIND_FOR_TEST: &str = super::super::COMMAND_KIND;
}
