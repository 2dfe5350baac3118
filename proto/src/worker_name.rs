//! `WorkerName`: the durable name of a worker — the name in its certificate
//! (`spiffe://opensandbox/worker/<name>`), what sandbox and checkpoint rows record and what the
//! control plane's links, placement and fan-out are keyed by. It is not the `WorkerId`, which
//! names one run of a worker process (a restarted worker heartbeats under a new id and the same
//! name, and keeps its checkpoints).
//!
//! Names follow the identity rule of certificates: 1 to 63 characters from `a-z`, `0-9`, `-`
//! and `.`, starting with a letter or digit. Parsing (and deserialising) enforces it, so a
//! name can always go into a URI, a log field or a NATS subject token as it is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted identity (and so worker) name.
pub const MAX_IDENTITY_NAME_LEN: usize = 63;

/// Whether `name` is a valid identity name (for workers and control planes alike).
pub fn is_valid_identity_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IDENTITY_NAME_LEN
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'.'
        })
        && name
            .bytes()
            .next()
            .is_some_and(|first| first.is_ascii_alphanumeric())
}

/// Why a string is not a worker name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid worker name {given:?}: use 1 to 63 characters from a-z, 0-9, `-` and `.`, starting with a letter or digit")]
pub struct WorkerNameError {
    pub given: String,
}

/// A worker's name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerName(String);

impl WorkerName {
    /// Checks and wraps a name.
    pub fn new(name: &str) -> Result<Self, WorkerNameError> {
        if is_valid_identity_name(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(WorkerNameError {
                given: name.chars().take(80).collect(),
            })
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WorkerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for WorkerName {
    type Err = WorkerNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::new(text)
    }
}

impl AsRef<str> for WorkerName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for WorkerName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for WorkerName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for WorkerName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for WorkerName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_names_are_worker_names() {
        for name in ["wa", "w1", "local", "worker-eu-1", "node.example", "7"] {
            assert_eq!(WorkerName::new(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn anything_else_is_refused_clearly() {
        for bad in [
            "",
            "Worker",
            "w_1",
            "-w",
            ".w",
            "w/1",
            "w 1",
            &"a".repeat(64),
        ] {
            let error = WorkerName::new(bad).unwrap_err();
            assert!(error.to_string().contains("invalid worker name"), "{bad}");
        }
    }

    #[test]
    fn serde_is_the_plain_string_and_validates() {
        let name = WorkerName::new("wa").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"wa\"");
        assert_eq!(serde_json::from_str::<WorkerName>("\"wa\"").unwrap(), name);
        assert!(serde_json::from_str::<WorkerName>("\"W A\"").is_err());
    }
}
