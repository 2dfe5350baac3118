//! Typed identifiers. Signatures take `SandboxId`, never a bare `Uuid` or `String`, so an org id
//! can never be passed where a project id is expected. Ids print with a short kind prefix
//! (`sbx_…`) so a human reading a log or an API response knows what they are looking at; parsing
//! accepts the prefixed form and the bare UUID.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a valid {kind} id: expected `{prefix}_` followed by a UUID")]
pub struct IdParseError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub input: String,
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// The kind prefix used in the textual form.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// Wraps an existing UUID (as stored in the database).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID, for storage.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                let error = || IdParseError {
                    kind: $kind,
                    prefix: $prefix,
                    input: input.chars().take(80).collect(),
                };
                let bare = match input.split_once('_') {
                    Some((prefix, rest)) if prefix == $prefix => rest,
                    Some(_) => return Err(error()),
                    None => input,
                };
                Uuid::try_parse(bare).map(Self).map_err(|_| error())
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// An organisation: the tenant boundary. Nothing crosses it.
    OrgId, "org", "org"
);
typed_id!(
    /// A project: secrets, allowlist and sandbox defaults.
    ProjectId, "project", "prj"
);
typed_id!(
    /// One stored secret (a name inside a project).
    SecretId, "secret", "sec"
);
typed_id!(
    /// One sandbox.
    SandboxId, "sandbox", "sbx"
);
typed_id!(
    /// A checkpoint of one sandbox's writable layer and metadata.
    CheckpointId, "checkpoint", "chk"
);
typed_id!(
    /// A named golden snapshot that new sandboxes boot from.
    SnapshotId, "snapshot", "snap"
);
typed_id!(
    /// One saga execution (create, restore, fork, golden snapshot).
    SagaId, "saga", "saga"
);
typed_id!(
    /// One worker process.
    WorkerId, "worker", "wrk"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let id = SandboxId::new();
        let text = id.to_string();
        assert!(text.starts_with("sbx_"));
        assert_eq!(text.parse::<SandboxId>().unwrap(), id);
    }

    #[test]
    fn bare_uuid_is_accepted() {
        let uuid = Uuid::new_v4();
        let id: ProjectId = uuid.to_string().parse().unwrap();
        assert_eq!(id.as_uuid(), uuid);
    }

    #[test]
    fn wrong_prefix_is_refused_with_a_clear_message() {
        let project = ProjectId::new().to_string();
        let error = project.parse::<SandboxId>().unwrap_err();
        assert_eq!(error.kind, "sandbox");
        assert!(error.to_string().contains("not a valid sandbox id"));
    }

    #[test]
    fn garbage_is_refused() {
        assert!("sbx_not-a-uuid".parse::<SandboxId>().is_err());
        assert!("".parse::<OrgId>().is_err());
    }

    #[test]
    fn serde_uses_the_prefixed_form() {
        let id = OrgId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: OrgId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
    }
}
