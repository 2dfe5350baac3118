//! `AbortAfterRecord`: the crash tests' way to kill a worker in the runner's worst window —
//! a command's effect ran and its outcome is on disk, but the outcome was never published and
//! the command never acknowledged (ADR 0021). `osbd` builds one only from its test-only
//! `failpoints` feature (`OPENSANDBOX_FAILPOINT=worker_abort_after:<step>[:undo]`); every other
//! caller passes `None`, and this crate has no feature, environment variable or other way to
//! arm it.
//!
//! It must never fire for a command that was not executed by this process or whose record is
//! not readable back: the test it serves proves that the redelivery is answered from that record.

use osb_bus::command::WorkerCommand;
use osb_bus::SagaAction;

/// Which command's completion the process dies before publishing: a saga step and direction.
/// A step, not a verb, because one verb serves several steps (`destroy_sandbox` is both the
/// destroy saga's step and the create saga's undo of `boot_sandbox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortAfterRecord {
    step: String,
    action: SagaAction,
}

impl AbortAfterRecord {
    /// Parses `<step>` (its `do`), `<step>:do` or `<step>:undo`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let (step, action) = match value.rsplit_once(':') {
            Some((step, "do")) => (step, SagaAction::Do),
            Some((step, "undo")) => (step, SagaAction::Undo),
            Some((_, other)) => {
                return Err(format!(
                    "{value:?} ends in {other:?}: write a saga step, optionally followed by :do or :undo (e.g. boot_sandbox:do)"
                ))
            }
            None => (value, SagaAction::Do),
        };
        let well_formed = !step.is_empty()
            && step
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte == b'_');
        if !well_formed {
            return Err(format!(
                "{step:?} is not a saga step name (lowercase letters and underscores, e.g. boot_sandbox)"
            ));
        }
        Ok(Self {
            step: step.to_owned(),
            action,
        })
    }

    /// Whether `command` is the one to die after.
    pub(crate) fn matches(&self, command: &WorkerCommand) -> bool {
        command.step == self.step && SagaAction::from(command.action) == self.action
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osb_bus::command::{CommandPayload, DestroySandbox};
    use osb_proto::{SagaId, SandboxId};

    fn destroy(step: &str, action: SagaAction) -> WorkerCommand {
        WorkerCommand::new(
            SagaId::new(),
            step,
            action,
            CommandPayload::DestroySandbox(DestroySandbox {
                sandbox_id: SandboxId::new(),
            }),
        )
    }

    #[test]
    fn a_step_names_its_do_unless_told_otherwise() {
        let boot = AbortAfterRecord::parse("boot_sandbox").unwrap();
        assert_eq!(boot, AbortAfterRecord::parse("boot_sandbox:do").unwrap());
        assert!(!boot.matches(&destroy("boot_sandbox", SagaAction::Undo)));
        let undo = AbortAfterRecord::parse("boot_sandbox:undo").unwrap();
        assert!(undo.matches(&destroy("boot_sandbox", SagaAction::Undo)));
        // The same verb for another step is not the armed command.
        let destroy_step = AbortAfterRecord::parse("destroy_sandbox").unwrap();
        assert!(destroy_step.matches(&destroy("destroy_sandbox", SagaAction::Do)));
        assert!(!destroy_step.matches(&destroy("boot_sandbox", SagaAction::Undo)));
    }

    #[test]
    fn malformed_values_are_refused_with_an_example() {
        for value in ["", ":do", "boot_sandbox:later", "Boot Sandbox", "a/b"] {
            let refusal = AbortAfterRecord::parse(value).unwrap_err();
            assert!(refusal.contains("e.g."), "{value:?}: {refusal}");
        }
    }
}
