//! `OutcomeRecords`: the worker's record of executed commands, one small JSON file per
//! idempotency key under `<data dir>/commands/`, written (atomically: temporary file, fsync,
//! rename) after a command ran and before its outcome is published. A redelivered command —
//! its outcome was lost, its runner died before acknowledging, the control plane re-sent it —
//! is answered from here instead of acting twice (ADR 0021). Records older than a week are
//! removed at start: no saga waits that long.
//!
//! It must never hold a value: outcomes carry ids, addresses, counts and error sentences.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use osb_bus::command::StepOutcome;

const KEEP_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

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

    /// Records an outcome durably.
    pub(crate) fn put(&self, outcome: &StepOutcome) -> Result<(), String> {
        use std::io::Write;
        let path = self.path(&outcome.key);
        let temporary = path.with_extension("tmp");
        let bytes = serde_json::to_vec(outcome).map_err(|error| error.to_string())?;
        let mut file = std::fs::File::create(&temporary)
            .map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
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
        records.put(&outcome).unwrap();
        let reopened = OutcomeRecords::open(&temp).unwrap();
        assert_eq!(reopened.get(&outcome.key), Some(outcome));
        assert!(reopened.get("sga_1:other:do").is_none());
        let names: Vec<String> = std::fs::read_dir(&temp)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|name| !name.contains('/')), "{names:?}");
        std::fs::remove_dir_all(&temp).unwrap();
    }
}
