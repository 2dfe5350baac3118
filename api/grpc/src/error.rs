//! Errors of the gRPC link. Each message says what was wrong and what to do; none ever holds a
//! request, a secret value or key material (only paths, names and variable names).

use std::path::PathBuf;

use super::identity::IdentityError;

/// The environment does not describe a usable gRPC security setup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrpcConfigError {
    /// Some but not all TLS variables are set: never a silent fallback to plaintext.
    #[error("gRPC mutual TLS is partially configured: {} not set while {} set; set all three PEM paths (create them with `osbd certs init`), or unset all three", .missing.join(", "), .present.join(", "))]
    PartialTls {
        missing: Vec<&'static str>,
        present: Vec<&'static str>,
    },
    /// Nothing is configured and plaintext was not explicitly allowed.
    #[error("gRPC needs mutual TLS: set {ca}, {cert} and {key} to PEM files (create them with `osbd certs init`), or for local development only set {flag}=1 and listen on a loopback address", ca = super::TLS_CA_ENV, cert = super::TLS_CERT_ENV, key = super::TLS_KEY_ENV, flag = super::INSECURE_LOOPBACK_ENV)]
    NotConfigured,
    /// TLS is configured and plaintext is requested too: refuse the ambiguity.
    #[error("both gRPC mutual TLS ({ca}, …) and {flag} are set; unset {flag} to use TLS", ca = super::TLS_CA_ENV, flag = super::INSECURE_LOOPBACK_ENV)]
    TlsAndInsecure,
    /// The plaintext flag holds something other than a boolean.
    #[error("{name} must be 1/true/yes or 0/false/no, not {given:?}")]
    InvalidFlag { name: &'static str, given: String },
}

/// Why the gRPC link could not start, connect or load its material.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error(transparent)]
    Config(#[from] GrpcConfigError),
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path} holds no usable PEM data ({reason}); point the variable at the right file or reissue it with `osbd certs issue`")]
    BadPem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("the certificate in {path} has no usable OpenSandbox identity: {source}")]
    OwnIdentity {
        path: PathBuf,
        source: IdentityError,
    },
    #[error("this process holds the certificate of {actual} but needs a {expected} certificate; issue one with `osbd certs issue --role {expected}`")]
    WrongOwnRole {
        expected: super::PeerRole,
        actual: super::PeerIdentity,
    },
    #[error("plaintext gRPC is allowed only on a loopback address, not {address}; configure mutual TLS ({ca}, …)", ca = super::TLS_CA_ENV)]
    PlaintextNotLoopback { address: String },
    #[error("the TLS library refused the configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot build the client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("cannot listen for gRPC on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{target:?} is not a `host:port` gRPC target")]
    BadTarget { target: String },
    #[error("cannot connect to worker {target}: {source}")]
    Connect {
        target: String,
        source: tonic::transport::Error,
    },
    #[error("the gRPC server stopped with an error: {0}")]
    Serve(tonic::transport::Error),
    #[error("the gRPC server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
