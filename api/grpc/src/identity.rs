//! Who is on the other end of a gRPC connection. Every OpenSandbox gRPC certificate carries one
//! SPIFFE-style URI subject alternative name, `spiffe://opensandbox/<role>/<name>`, with role
//! `control` or `worker`; the common name repeats it as `<role>:<name>` for humans. Identity is
//! read only from a certificate that already chained to the configured CA; this module must
//! never be asked to trust an unverified certificate.

use std::fmt;
use std::str::FromStr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Prefix of the identity URI in a certificate's subject alternative names.
pub const IDENTITY_URI_PREFIX: &str = "spiffe://opensandbox/";

/// What a peer is allowed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// A control plane: calls workers.
    Control,
    /// A worker: serves the worker service.
    Worker,
}

impl PeerRole {
    /// The role's word in URIs, common names and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerRole::Control => "control",
            PeerRole::Worker => "worker",
        }
    }
}

impl fmt::Display for PeerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PeerRole {
    type Err = IdentityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "control" => Ok(PeerRole::Control),
            "worker" => Ok(PeerRole::Worker),
            other => Err(IdentityError::UnknownRole {
                given: other.chars().take(40).collect(),
            }),
        }
    }
}

/// Why a name or a certificate does not give a usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("unknown role {given:?}: expected `control` or `worker`")]
    UnknownRole { given: String },
    #[error("invalid identity name {given:?}: use 1 to 63 characters from a-z, 0-9, `-` and `.`, starting with a letter or digit")]
    InvalidName { given: String },
    #[error("the certificate cannot be parsed as X.509")]
    Unparsable,
    #[error("the certificate has no `{IDENTITY_URI_PREFIX}<role>/<name>` URI name; issue it with `osbd certs issue`")]
    Missing,
    #[error("the certificate has several OpenSandbox identity URIs; a certificate names exactly one peer")]
    Ambiguous,
    #[error("malformed identity URI {given:?}: expected `{IDENTITY_URI_PREFIX}<role>/<name>`")]
    Malformed { given: String },
}

/// A verified peer: its role and name (for a worker, the name placement knows it by).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    role: PeerRole,
    name: String,
}

impl PeerIdentity {
    /// Checks the name and builds an identity.
    pub fn new(role: PeerRole, name: &str) -> Result<Self, IdentityError> {
        let valid = osb_proto::is_valid_identity_name(name);
        if !valid {
            return Err(IdentityError::InvalidName {
                given: name.chars().take(80).collect(),
            });
        }
        Ok(Self {
            role,
            name: name.to_owned(),
        })
    }

    /// The peer's role.
    pub fn role(&self) -> PeerRole {
        self.role
    }

    /// The peer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The worker name of a worker peer (`None` for a control plane).
    pub fn worker_name(&self) -> Option<osb_proto::WorkerName> {
        match self.role {
            PeerRole::Worker => osb_proto::WorkerName::new(&self.name).ok(),
            PeerRole::Control => None,
        }
    }

    /// The URI subject alternative name that carries this identity.
    pub fn uri(&self) -> String {
        format!("{IDENTITY_URI_PREFIX}{}/{}", self.role, self.name)
    }

    /// Parses an identity URI.
    pub fn from_uri(uri: &str) -> Result<Self, IdentityError> {
        let malformed = || IdentityError::Malformed {
            given: uri.chars().take(120).collect(),
        };
        let rest = uri
            .strip_prefix(IDENTITY_URI_PREFIX)
            .ok_or_else(malformed)?;
        let (role, name) = rest.split_once('/').ok_or_else(malformed)?;
        Self::new(role.parse()?, name)
    }

    /// Reads the identity of a DER certificate (which the caller has already verified).
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (_, certificate) =
            X509Certificate::from_der(der).map_err(|_| IdentityError::Unparsable)?;
        let names = certificate
            .subject_alternative_name()
            .map_err(|_| IdentityError::Unparsable)?;
        let mut found = None;
        for name in names
            .iter()
            .flat_map(|extension| &extension.value.general_names)
        {
            let GeneralName::URI(uri) = name else {
                continue;
            };
            if !uri.starts_with(IDENTITY_URI_PREFIX) {
                continue;
            }
            if found.is_some() {
                return Err(IdentityError::Ambiguous);
            }
            found = Some(Self::from_uri(uri)?);
        }
        found.ok_or(IdentityError::Missing)
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.role, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_round_trips() {
        let identity = PeerIdentity::new(PeerRole::Worker, "w-1.eu").expect("valid");
        assert_eq!(identity.uri(), "spiffe://opensandbox/worker/w-1.eu");
        assert_eq!(
            PeerIdentity::from_uri(&identity.uri()),
            Ok(identity.clone())
        );
        assert_eq!(identity.to_string(), "worker:w-1.eu");
    }

    #[test]
    fn bad_names_and_uris_are_refused() {
        for name in ["", "-x", "UPPER", "a/b", "a b", &"x".repeat(64)] {
            assert!(
                PeerIdentity::new(PeerRole::Control, name).is_err(),
                "{name:?}"
            );
        }
        for uri in [
            "spiffe://opensandbox/admin/x",
            "spiffe://other/worker/x",
            "spiffe://opensandbox/worker",
            "spiffe://opensandbox/worker/a/b",
        ] {
            assert!(PeerIdentity::from_uri(uri).is_err(), "{uri}");
        }
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(
            PeerIdentity::from_certificate_der(b"not der"),
            Err(IdentityError::Unparsable)
        );
    }
}
