//! `CommandSpace`: where one deployment's worker commands live — the subjects
//! `osb.cmd.<actor>.<worker>.<verb>`, the JetStream work-queue stream that holds them until a
//! worker acknowledges, and each worker's durable consumer `worker-<worker>`. Production uses
//! actor `worker` and stream `OSB_COMMANDS`; tests that share a NATS server scope both with a
//! tag (actor `worker_<tag>`, stream `OSB_COMMANDS_<TAG>`), so two test platforms whose workers
//! are both called `wa` never take each other's commands.

use std::time::Duration;

use crate::subject::{command_for_worker, Subject, SubjectError};

/// How commands are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSettings {
    pub space: CommandSpace,
    /// A delivered command not acknowledged (nor reported in progress) within this time is
    /// delivered again.
    pub ack_wait: Duration,
    /// Re-publications of one message id within this window are dropped.
    pub duplicate_window: Duration,
}

impl Default for CommandSettings {
    fn default() -> Self {
        Self {
            space: CommandSpace::production(),
            ack_wait: Duration::from_secs(30),
            duplicate_window: crate::nats::DUPLICATE_WINDOW,
        }
    }
}

/// The naming of one deployment's commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpace {
    actor: String,
    stream: String,
}

impl CommandSpace {
    /// `osb.cmd.worker.<worker>.<verb>` in stream `OSB_COMMANDS`.
    pub fn production() -> Self {
        Self {
            actor: "worker".to_owned(),
            stream: "OSB_COMMANDS".to_owned(),
        }
    }

    /// A space of its own for a test: `tag` is lowercase letters and digits.
    pub fn scoped(tag: &str) -> Result<Self, SubjectError> {
        let valid = !tag.is_empty()
            && tag.len() <= 40
            && tag
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit());
        if !valid {
            return Err(SubjectError {
                what: "command space tag",
                token: tag.chars().take(80).collect(),
            });
        }
        Ok(Self {
            actor: format!("worker_{tag}"),
            stream: format!("OSB_COMMANDS_{}", tag.to_ascii_uppercase()),
        })
    }

    /// The subject of `verb` for `worker`.
    pub fn subject(&self, worker: &str, verb: &str) -> Result<Subject, SubjectError> {
        command_for_worker(&self.actor, worker, verb)
    }

    /// Every command subject of `worker` (its consumer's filter).
    pub fn worker_filter(&self, worker: &str) -> Result<String, SubjectError> {
        Ok(format!(
            "osb.cmd.{}.{}.*",
            self.actor,
            worker_token(worker)?
        ))
    }

    /// Every command subject of this space (the stream's subjects).
    pub fn all_subjects(&self) -> String {
        format!("osb.cmd.{}.>", self.actor)
    }

    /// The work-queue stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The durable consumer of `worker`.
    pub fn consumer(&self, worker: &str) -> Result<String, SubjectError> {
        Ok(format!("worker-{}", worker_token(worker)?))
    }
}

/// A worker name as one subject token: names are `a-z 0-9 - .`; a `.` would split the token,
/// so it becomes `_` (which names never contain, so the mapping stays one-to-one).
pub fn worker_token(worker: &str) -> Result<String, SubjectError> {
    if !osb_proto::is_valid_identity_name(worker) {
        return Err(SubjectError {
            what: "worker name",
            token: worker.chars().take(80).collect(),
        });
    }
    Ok(worker.replace('.', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_and_scoped_spaces_do_not_overlap() {
        let production = CommandSpace::production();
        assert_eq!(
            production
                .subject("w-1.eu", "boot_sandbox")
                .unwrap()
                .as_str(),
            "osb.cmd.worker.w-1_eu.boot_sandbox"
        );
        assert_eq!(production.all_subjects(), "osb.cmd.worker.>");
        assert_eq!(production.consumer("w-1.eu").unwrap(), "worker-w-1_eu");
        let scoped = CommandSpace::scoped("t42").unwrap();
        assert_eq!(
            scoped.subject("wa", "restore").unwrap().as_str(),
            "osb.cmd.worker_t42.wa.restore"
        );
        assert_eq!(
            scoped.worker_filter("wa").unwrap(),
            "osb.cmd.worker_t42.wa.*"
        );
        assert_eq!(scoped.stream(), "OSB_COMMANDS_T42");
        assert!(!crate::matches(
            &production.all_subjects(),
            "osb.cmd.worker_t42.wa.restore"
        ));
    }

    #[test]
    fn bad_names_and_tags_are_refused() {
        assert!(worker_token("a*b").is_err());
        assert!(worker_token("").is_err());
        assert!(CommandSpace::scoped("T1").is_err());
        assert!(CommandSpace::production().subject("wa", "Boot").is_err());
    }
}
