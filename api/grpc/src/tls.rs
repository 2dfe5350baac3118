//! Loads the mutual TLS material named by [`GrpcSecurityConfig`] and builds the rustls configs:
//! TLS 1.3 only, the ring provider, ALPN `h2`, client certificates required on the server and
//! presented by the client, both sides verified against the configured CA and checked for the
//! peer's role. This is the one door to TLS for gRPC; it must never build a config that accepts
//! TLS 1.2, an anonymous client or a certificate from another CA.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::config::{GrpcSecurityConfig, TlsPaths};
use super::error::GrpcError;
use super::identity::{PeerIdentity, PeerRole};
use super::verify::{RoleCheckingClientVerifier, RoleCheckingServerVerifier};

/// Only TLS 1.3 is ever offered or accepted.
static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// The security of the gRPC link, ready to build servers and clients.
#[derive(Debug, Clone)]
pub enum GrpcSecurity {
    /// Mutual TLS 1.3.
    MutualTls(Arc<TlsMaterial>),
    /// Plaintext on loopback only (development; the server and client check the addresses).
    InsecureLoopback,
}

impl GrpcSecurity {
    /// Reads the environment and loads the files it names. Partial configuration is an error.
    pub fn from_env() -> Result<Self, GrpcError> {
        Self::load(&GrpcSecurityConfig::from_env()?)
    }

    /// Loads what `config` names.
    pub fn load(config: &GrpcSecurityConfig) -> Result<Self, GrpcError> {
        match config {
            GrpcSecurityConfig::MutualTls(paths) => {
                Ok(Self::MutualTls(Arc::new(TlsMaterial::load(paths)?)))
            }
            GrpcSecurityConfig::InsecureLoopback => {
                tracing::warn!(
                    "grpc runs in plaintext on loopback: development only, never in production"
                );
                Ok(Self::InsecureLoopback)
            }
        }
    }

    /// This process's identity (none in plaintext mode).
    pub fn identity(&self) -> Option<&PeerIdentity> {
        match self {
            Self::MutualTls(material) => Some(material.identity()),
            Self::InsecureLoopback => None,
        }
    }
}

/// The CA, this process's certificate chain and key, and the identity in that certificate.
pub struct TlsMaterial {
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    identity: PeerIdentity,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("identity", &self.identity)
            .field("roots", &self.roots.len())
            .field("chain", &self.chain.len())
            .field("key", &"[redacted]")
            .finish()
    }
}

impl TlsMaterial {
    /// Reads and checks the three PEM files.
    pub fn load(paths: &TlsPaths) -> Result<Self, GrpcError> {
        let ca_pem = read(&paths.ca, "gRPC CA certificate")?;
        let mut roots = RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(&ca_pem) {
            let certificate =
                certificate.map_err(|error| bad_pem(&paths.ca, "gRPC CA certificate", error))?;
            roots.add(certificate).map_err(|error| GrpcError::BadPem {
                what: "gRPC CA certificate",
                path: paths.ca.clone(),
                reason: error.to_string(),
            })?;
        }
        if roots.is_empty() {
            return Err(GrpcError::BadPem {
                what: "gRPC CA certificate",
                path: paths.ca.clone(),
                reason: "no certificate".into(),
            });
        }
        let cert_pem = read(&paths.cert, "gRPC certificate")?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| bad_pem(&paths.cert, "gRPC certificate", error))?;
        let leaf = chain.first().ok_or_else(|| GrpcError::BadPem {
            what: "gRPC certificate",
            path: paths.cert.clone(),
            reason: "no certificate".into(),
        })?;
        let identity = PeerIdentity::from_certificate_der(leaf.as_ref()).map_err(|source| {
            GrpcError::OwnIdentity {
                path: paths.cert.clone(),
                source,
            }
        })?;
        warn_if_key_is_shared(&paths.key);
        let key_pem = read(&paths.key, "gRPC private key")?;
        // The parser's error may quote a line of the file: never echo anything from a key file.
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| GrpcError::BadPem {
            what: "gRPC private key",
            path: paths.key.clone(),
            reason: "expected one PEM private key (PKCS#8, SEC1 or PKCS#1)".into(),
        })?;
        Self::from_parts(roots, chain, key, identity)
    }

    /// Builds material from already parsed parts (the key must match the leaf certificate).
    pub fn from_parts(
        roots: RootCertStore,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        identity: PeerIdentity,
    ) -> Result<Self, GrpcError> {
        let material = Self {
            roots: Arc::new(roots),
            chain,
            key,
            identity,
        };
        // Building a server config checks that the key matches the certificate, at startup.
        material.server_config(PeerRole::Control)?;
        Ok(material)
    }

    /// The identity in this process's certificate.
    pub fn identity(&self) -> &PeerIdentity {
        &self.identity
    }

    /// Refuses to act as `role` with a certificate of another role.
    pub(crate) fn require_role(&self, role: PeerRole) -> Result<(), GrpcError> {
        if self.identity.role() == role {
            Ok(())
        } else {
            Err(GrpcError::WrongOwnRole {
                expected: role,
                actual: self.identity.clone(),
            })
        }
    }

    /// A server config accepting only clients of `client_role`.
    pub(crate) fn server_config(&self, client_role: PeerRole) -> Result<ServerConfig, GrpcError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            RoleCheckingClientVerifier::new(self.roots.clone(), provider.clone(), client_role)?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(TLS13_ONLY)?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }

    /// A client config presenting this certificate and accepting only a server of
    /// `server_role` (and, when given, of that exact name).
    pub(crate) fn client_config(
        &self,
        server_role: PeerRole,
        server_name: Option<&str>,
    ) -> Result<ClientConfig, GrpcError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = RoleCheckingServerVerifier::new(
            self.roots.clone(),
            provider.clone(),
            server_role,
            server_name.map(str::to_owned),
        );
        // `dangerous()` only because the verifier is our own: it still checks the chain against
        // the CA and the signatures; it replaces the DNS-name check with the identity check.
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(TLS13_ONLY)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, GrpcError> {
    fs::read(path).map_err(|source| GrpcError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn bad_pem(path: &Path, what: &'static str, error: rustls::pki_types::pem::Error) -> GrpcError {
    GrpcError::BadPem {
        what,
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

fn warn_if_key_is_shared(path: &Path) {
    if let Ok(metadata) = fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format_args!("{mode:o}"), "grpc private key is readable by other users; chmod 600 it");
        }
    }
}
