//! Answering a redelivered command from its record, checked against what still exists. A
//! record says what a command did; for most verbs that stays true (a destroyed sandbox stays
//! destroyed, a checkpoint stays on disk until deleted). A boot, a restore or a session, though,
//! made something that lives only as long as this worker process: a worker that starts again
//! reaps every sandbox an earlier run left (ADR 0204) and its proxy starts with no session. A
//! `booted` answer for a sandbox the worker no longer holds would send the saga on to mark a
//! sandbox `running` that nothing runs; the answer is a domain failure instead, so the saga
//! unwinds and the caller can create the sandbox again (ADR 0021).
//!
//! It must never run a command again: a record that no longer holds is reported, not repaired.

use osb_bus::command::{CommandPayload, OutcomeError, StepOutcome, StepResult};
use osb_proto::SandboxId;

use crate::holdings::Holdings;

/// The answer to a command already recorded: the record, unless the sandbox it made or
/// registered is gone.
pub(super) fn answer(
    payload: &CommandPayload,
    recorded: StepOutcome,
    holdings: &Holdings,
) -> StepOutcome {
    let replayed = StepOutcome {
        replayed: true,
        ..recorded
    };
    if !matches!(replayed.result, StepResult::Done { .. }) {
        return replayed;
    }
    let Some((sandbox, what)) = lives_with_the_process(payload) else {
        return replayed;
    };
    if holdings.holds(sandbox) {
        return replayed;
    }
    StepOutcome {
        result: StepResult::Failed(OutcomeError {
            fatal: false,
            message: format!(
                "sandbox {sandbox} {what} by this command, but worker {} no longer holds it (the worker restarted and reaped it, or it was destroyed since); create the sandbox again",
                replayed.worker
            ),
        }),
        ..replayed
    }
}

/// The sandbox whose life a command's success depends on, and what the command did to it.
pub(super) fn lives_with_the_process(
    payload: &CommandPayload,
) -> Option<(SandboxId, &'static str)> {
    match payload {
        CommandPayload::BootSandbox(boot) => Some((boot.sandbox_id, "was booted")),
        CommandPayload::RegisterSession(register) => {
            Some((register.sandbox_id, "had its proxy session registered"))
        }
        CommandPayload::Restore(restore) => Some((restore.sandbox_id, "was restored")),
        CommandPayload::DestroySandbox(_)
        | CommandPayload::UnregisterSession(_)
        | CommandPayload::Checkpoint(_)
        | CommandPayload::DeleteCheckpoint(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osb_bus::command::{BootFrom, BootSandbox, DestroySandbox};

    fn boot(sandbox_id: SandboxId) -> CommandPayload {
        CommandPayload::BootSandbox(BootSandbox {
            sandbox_id,
            project_id: None,
            template: "base".into(),
            egress_allowlist: Vec::new(),
            cpu_count: 1,
            memory_mb: 256,
            timeout_sec: 60,
            runtime: "netns".into(),
            boot: BootFrom::Fresh,
            staged_key: None,
        })
    }

    fn done(key: &str) -> StepOutcome {
        StepOutcome {
            key: key.into(),
            worker: "wa".into(),
            replayed: false,
            result: StepResult::Done {
                output: serde_json::json!({ "sourceAddress": "100.90.0.2" }),
            },
        }
    }

    #[test]
    fn a_boot_is_answered_from_its_record_while_its_sandbox_lives() {
        let sandbox = SandboxId::new();
        let holdings = Holdings::default();
        holdings.add(sandbox, 1, 256);
        let answer = answer(&boot(sandbox), done("k"), &holdings);
        assert!(answer.replayed);
        assert_eq!(answer.result, done("k").result);
    }

    #[test]
    fn a_boot_whose_sandbox_is_gone_is_a_domain_failure_not_a_second_boot() {
        let sandbox = SandboxId::new();
        let answer = answer(&boot(sandbox), done("k"), &Holdings::default());
        assert!(answer.replayed);
        let StepResult::Failed(error) = answer.result else {
            panic!("a sandbox nobody holds was reported booted");
        };
        assert!(!error.fatal, "a fatal failure would be retried");
        assert!(
            error.message.contains(&sandbox.to_string()),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("create the sandbox again"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_destroy_stays_true_after_the_sandbox_is_gone() {
        let sandbox = SandboxId::new();
        let destroy = CommandPayload::DestroySandbox(DestroySandbox {
            sandbox_id: sandbox,
        });
        let answer = answer(&destroy, done("k"), &Holdings::default());
        assert!(answer.replayed);
        assert_eq!(answer.result, done("k").result);
    }
}
