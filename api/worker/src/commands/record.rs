//! `OutcomeRecords`: the worker's record of executed commands, one small JSON file per
//! idempotency key under `<data dir>/commands/`, written (atomically: temporary file, rename)
//! after a command ran and before its outcome is published. A redelivered command — its
//! outcome was lost, its runner died before acknowledging, the control plane re-sent it — is
//! answered from here instead of acting twice (ADR 0021). Records older than a week are
//! removed at start: no saga waits that long.
//!
//! A record is made exactly as durable as the effect it guards (ADR 0034): the record of an
//! effect that outlives the machine (a checkpoint on disk, a deletion) is fsynced before the
//! rename; the record of an effect that lives only as long as the worker process (a booted
//! sandbox, a proxy session) survives the process (the page cache outlives a `kill -9`) but is
//! not fsynced — after a machine crash that effect is gone too, so the record would guard
//! nothing, and the fsync costs a disk flush (~4–8 ms here) on every create.
//!
//! It must never hold a value: outcomes carry ids, addresses, counts and error sentences.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use osb_bus::command::StepOutcome;

const KEEP_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a record must last: as long as the effect it guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// The effect dies with the worker process (and so with the machine): written and renamed,
    /// readable after a process crash, not flushed to the disk.
    Process,
    /// The effect is on disk and outlives a machine crash: fsynced before the rename.
    Machine,
}

/// Executed commands and their outcomes, on disk.
#[derive(Debug)]
pub(crate) struct OutcomeRecords {
    dir: PathBuf,
}

impl OutcomeRecords {
    /// Opens (creating) the record directory and drops expired records.
    pub(crate) fn open(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        if let Ok(entries) = std::fs::read_dir(dir) {
            let now = SystemTime::now();
            for entry in entries.flatten() {
                let old = entry
                    .metadata()
                    .and_then(|meta| meta.modified())
                    .ok()
                    .and_then(|modified| now.duration_since(modified).ok())
                    .is_some_and(|age| age > KEEP_FOR);
                if old {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        // Keys are `{saga}:{step}:{do|undo}`; anything outside a safe file-name alphabet is
        // escaped, so no key can name a path outside the directory.
        let mut name = String::with_capacity(key.len() + 5);
        for byte in key.bytes() {
            if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
                name.push(char::from(byte));
            } else {
                name.push_str(&format!("%{byte:02x}"));
            }
        }
        name.push_str(".json");
        self.dir.join(name)
    }

    /// The recorded outcome of `key`, if it ran.
    pub(crate) fn get(&self, key: &str) -> Option<StepOutcome> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records an outcome, as durably as `durability` asks.
    pub(crate) fn put(&self, outcome: &StepOutcome, durability: Durability) -> Result<(), String> {
        use std::io::Write;
        let path = self.path(&outcome.key);
        let temporary = path.with_extension("tmp");
        let bytes = serde_json::to_vec(outcome).map_err(|error| error.to_string())?;
        let mut file = std::fs::File::create(&temporary)
            .map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
        file.write_all(&bytes)
            .and_then(|()| match durability {
                Durability::Machine => file.sync_all(),
                Durability::Process => Ok(()),
            })
            .map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
        std::fs::rename(&temporary, &path)
            .map_err(|error| format!("cannot record {}: {error}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osb_bus::command::StepResult;

    #[test]
    fn outcomes_survive_reopening_and_keys_cannot_escape() {
        let temp = std::env::temp_dir().join(format!("osb-records-{}", std::process::id()));
        let records = OutcomeRecords::open(&temp).unwrap();
        let outcome = StepOutcome {
            key: "sga_1:../../etc/passwd:do".into(),
            worker: "wa".into(),
            replayed: false,
            result: StepResult::Done {
                output: serde_json::json!({ "existed": true }),
            },
        };
        records.put(&outcome, Durability::Machine).unwrap();
        let process_only = StepOutcome {
            key: "sga_1:boot_sandbox:do".into(),
            ..outcome.clone()
        };
        records.put(&process_only, Durability::Process).unwrap();
        let reopened = OutcomeRecords::open(&temp).unwrap();
        assert_eq!(reopened.get(&outcome.key), Some(outcome));
        // A record kept for the process is as readable after a reopen (a restarted process).
        assert_eq!(reopened.get(&process_only.key), Some(process_only));
        assert!(reopened.get("sga_1:other:do").is_none());
        let names: Vec<String> = std::fs::read_dir(&temp)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|name| !name.contains('/')), "{names:?}");
        std::fs::remove_dir_all(&temp).unwrap();
    }
}
