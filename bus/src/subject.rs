//! Subject builders (DESIGN.md §3):
//! events `osb.<aggregate>.<id>.<past_tense_event>`, commands `osb.cmd.<actor>.<verb>` or
//! `osb.cmd.<actor>.<target>.<verb>`, saga progress `osb.saga.<saga_id>.<step>.<outcome>`,
//! heartbeats `osb.worker.<id>.heartbeat`. Every token is checked: lowercase ASCII letters,
//! digits and `_` only, so no caller can smuggle a `.`, `*` or `>` into a subject.

use std::fmt;

use osb_proto::{ProjectId, SagaId, SandboxId, WorkerId};

/// Subscribe to every OpenSandbox subject.
pub const ALL_EVENTS: &str = "osb.>";

/// A validated NATS subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject(String);

impl Subject {
    /// The subject text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A subject token that is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {token:?} is not a valid subject token: use lowercase letters, digits and '_' only"
)]
pub struct SubjectError {
    pub what: &'static str,
    pub token: String,
}

/// How a saga step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaOutcome {
    Completed,
    Failed,
    Undone,
}

impl SagaOutcome {
    fn as_str(self) -> &'static str {
        match self {
            SagaOutcome::Completed => "completed",
            SagaOutcome::Failed => "failed",
            SagaOutcome::Undone => "undone",
        }
    }
}

fn token<'a>(what: &'static str, text: &'a str) -> Result<&'a str, SubjectError> {
    let valid = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    if valid {
        Ok(text)
    } else {
        Err(SubjectError {
            what,
            token: text.chars().take(80).collect(),
        })
    }
}

/// `osb.sandbox.<id>.<event>`, e.g. `created`, `egress_blocked`, `secret_used`.
pub fn sandbox_event(id: SandboxId, event: &str) -> Result<Subject, SubjectError> {
    Ok(Subject(format!(
        "osb.sandbox.{id}.{}",
        token("event", event)?
    )))
}

/// `osb.project.<id>.<event>`, e.g. `secret_updated`.
pub fn project_event(id: ProjectId, event: &str) -> Result<Subject, SubjectError> {
    Ok(Subject(format!(
        "osb.project.{id}.{}",
        token("event", event)?
    )))
}

/// `osb.cmd.<actor>.<verb>`.
pub fn command(actor: &str, verb: &str) -> Result<Subject, SubjectError> {
    Ok(Subject(format!(
        "osb.cmd.{}.{}",
        token("actor", actor)?,
        token("verb", verb)?
    )))
}

/// `osb.cmd.<actor>.<target>.<verb>` (for example a worker id as target).
pub fn command_for(actor: &str, target: &str, verb: &str) -> Result<Subject, SubjectError> {
    Ok(Subject(format!(
        "osb.cmd.{}.{}.{}",
        token("actor", actor)?,
        token("target", target)?,
        token("verb", verb)?
    )))
}

/// `osb.cmd.<actor>.<worker>.<verb>`: a command to one worker, named by its worker name
/// (see [`crate::command::worker_token`] for how a name becomes one token).
pub fn command_for_worker(actor: &str, worker: &str, verb: &str) -> Result<Subject, SubjectError> {
    let worker = crate::command::worker_token(worker)?;
    Ok(Subject(format!(
        "osb.cmd.{}.{worker}.{}",
        token("actor", actor)?,
        token("verb", verb)?
    )))
}

/// `osb.saga.<saga_id>.<step>.<outcome>`.
pub fn saga_progress(
    saga: SagaId,
    step: &str,
    outcome: SagaOutcome,
) -> Result<Subject, SubjectError> {
    Ok(Subject(format!(
        "osb.saga.{saga}.{}.{}",
        token("step", step)?,
        outcome.as_str()
    )))
}

/// `osb.saga.<saga_id>.<step>.*`: every outcome of one step (what a command's sender awaits).
pub fn saga_step_outcomes(saga: SagaId, step: &str) -> Result<String, SubjectError> {
    Ok(format!("osb.saga.{saga}.{}.*", token("step", step)?))
}

/// `osb.worker.<id>.<event>`, e.g. `lost`, `joined` (placement's view of workers).
pub fn worker_event(worker: WorkerId, event: &str) -> Result<Subject, SubjectError> {
    Ok(Subject(format!(
        "osb.worker.{worker}.{}",
        token("event", event)?
    )))
}

/// Every sandbox event (`osb.sandbox.<id>.<event>`), and the prefix a narrower pattern of them
/// starts with.
pub const ALL_SANDBOX_EVENTS: &str = "osb.sandbox.>";
pub const SANDBOX_EVENTS_PREFIX: &str = "osb.sandbox.";

/// Every project event (`osb.project.<id>.<event>`), and the prefix a narrower pattern of them
/// starts with.
pub const ALL_PROJECT_EVENTS: &str = "osb.project.>";
pub const PROJECT_EVENTS_PREFIX: &str = "osb.project.";

/// Every saga's progress (`osb.saga.<saga_id>.<step>.<outcome>`), and the prefix a narrower
/// pattern of them starts with.
pub const ALL_SAGA_EVENTS: &str = "osb.saga.>";
pub const SAGA_EVENTS_PREFIX: &str = "osb.saga.";

/// Every worker's heartbeats (for placement's subscription).
pub const ALL_WORKER_HEARTBEATS: &str = "osb.worker.*.heartbeat";

/// `osb.worker.<id>.heartbeat`.
pub fn worker_heartbeat(worker: WorkerId) -> Subject {
    Subject(format!("osb.worker.{worker}.heartbeat"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_design() {
        let sandbox = SandboxId::new();
        assert_eq!(
            sandbox_event(sandbox, "egress_blocked").unwrap().as_str(),
            format!("osb.sandbox.{sandbox}.egress_blocked")
        );
        assert_eq!(
            command_for("vm", "wrk_1", "boot").unwrap().as_str(),
            "osb.cmd.vm.wrk_1.boot"
        );
        let saga = SagaId::new();
        assert_eq!(
            saga_progress(saga, "seal_secrets", SagaOutcome::Undone)
                .unwrap()
                .as_str(),
            format!("osb.saga.{saga}.seal_secrets.undone")
        );
        let worker = WorkerId::new();
        assert_eq!(
            worker_heartbeat(worker).as_str(),
            format!("osb.worker.{worker}.heartbeat")
        );
    }

    #[test]
    fn wildcards_and_dots_cannot_be_injected() {
        for bad in ["a.b", "*", ">", "", "Upper", "with space"] {
            let error = command("vm", bad).unwrap_err();
            assert!(error.to_string().contains("not a valid subject token"));
        }
        assert!(sandbox_event(SandboxId::new(), "created.>").is_err());
    }
}
