//! The versioned JSON envelope every bus message travels in. A consumer refuses an envelope of
//! a newer major version with a clear error instead of misreading it.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The envelope format version this build writes and reads.
pub const ENVELOPE_VERSION: u16 = 1;

/// A message on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    pub version: u16,
    /// What the payload is (`sandbox.created`, `cmd.vm.boot`, …).
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub correlation_id: Option<String>,
    pub payload: T,
}

/// Why bytes are not an envelope this build can read.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope version {found} is newer than this build understands ({supported}); upgrade this process")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("message is not a valid envelope: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl<T: Serialize + DeserializeOwned> Envelope<T> {
    /// Wraps a payload at the current version.
    pub fn new(kind: impl Into<String>, payload: T, correlation_id: Option<String>) -> Self {
        Self {
            version: ENVELOPE_VERSION,
            kind: kind.into(),
            occurred_at: Utc::now(),
            correlation_id,
            payload,
        }
    }

    /// JSON bytes for the wire.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Parses wire bytes, refusing unknown versions.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u16,
        }
        let probe: VersionOnly = serde_json::from_slice(bytes)?;
        if probe.version > ENVELOPE_VERSION {
            return Err(EnvelopeError::UnsupportedVersion {
                found: probe.version,
                supported: ENVELOPE_VERSION,
            });
        }
        Ok(serde_json::from_slice(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct SecretUpdated {
        name: String,
        version: u64,
    }

    #[test]
    fn round_trip_with_camel_case_fields() {
        let envelope = Envelope::new(
            "project.secret_updated",
            SecretUpdated {
                name: "API_KEY".into(),
                version: 2,
            },
            Some("req-1".into()),
        );
        let bytes = envelope.to_bytes().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"occurredAt\"") && text.contains("\"correlationId\""));
        assert_eq!(
            Envelope::<SecretUpdated>::from_bytes(&bytes).unwrap(),
            envelope
        );
    }

    #[test]
    fn newer_versions_are_refused_clearly() {
        let bytes = br#"{"version":9,"kind":"x","occurredAt":"2026-01-01T00:00:00Z","correlationId":null,"payload":{}}"#;
        let error = Envelope::<serde_json::Value>::from_bytes(bytes).unwrap_err();
        assert!(error.to_string().contains("upgrade this process"));
        assert!(Envelope::<serde_json::Value>::from_bytes(b"nope").is_err());
    }
}
