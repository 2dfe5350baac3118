//! The two certificate verifiers of the gRPC link. Both delegate the cryptographic work (chain to
//! the configured CA, validity, signatures) to rustls/webpki and then read the peer's OpenSandbox
//! identity and refuse a peer of the wrong role, so a worker certificate can never call a worker
//! and a control-plane certificate can never pose as a worker. The client side replaces the
//! DNS-name check with the identity check (workers are addressed by identity, see ADR 0300).
//! Neither may ever accept a certificate that did not chain to the CA.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use super::error::GrpcError;
use super::identity::{IdentityError, PeerIdentity, PeerRole};

/// Why a verified certificate is still refused; logged by the side that refuses.
#[derive(Debug, thiserror::Error)]
enum RoleRefusal {
    #[error("peer certificate has no usable identity: {0}")]
    Identity(#[from] IdentityError),
    #[error("peer {actual} is not allowed here: expected a {expected}")]
    WrongRole {
        expected: PeerRole,
        actual: PeerIdentity,
    },
    #[error("peer {actual} is not the expected {expected}")]
    WrongName {
        expected: String,
        actual: PeerIdentity,
    },
}

fn refuse(refusal: RoleRefusal) -> rustls::Error {
    tracing::warn!(reason = %refusal, "grpc peer refused");
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        refusal,
    ))))
}

fn check_identity(
    end_entity: &CertificateDer<'_>,
    role: PeerRole,
    name: Option<&str>,
) -> Result<PeerIdentity, RoleRefusal> {
    let identity = PeerIdentity::from_certificate_der(end_entity.as_ref())?;
    if identity.role() != role {
        return Err(RoleRefusal::WrongRole {
            expected: role,
            actual: identity,
        });
    }
    if let Some(expected) = name {
        if identity.name() != expected {
            return Err(RoleRefusal::WrongName {
                expected: format!("{role}:{expected}"),
                actual: identity,
            });
        }
    }
    Ok(identity)
}

/// Server side: a client certificate is mandatory, must chain to the CA and carry `role`.
#[derive(Debug)]
pub(crate) struct RoleCheckingClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    role: PeerRole,
}

impl RoleCheckingClientVerifier {
    pub(crate) fn new(
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
        role: PeerRole,
    ) -> Result<Self, GrpcError> {
        let inner = WebPkiClientVerifier::builder_with_provider(roots, provider).build()?;
        Ok(Self { inner, role })
    }
}

impl ClientCertVerifier for RoleCheckingClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        check_identity(end_entity, self.role, None).map_err(refuse)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Client side: the server certificate must chain to the CA and carry `role` (and `name`).
#[derive(Debug)]
pub(crate) struct RoleCheckingServerVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    role: PeerRole,
    name: Option<String>,
}

impl RoleCheckingServerVerifier {
    pub(crate) fn new(
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
        role: PeerRole,
        name: Option<String>,
    ) -> Self {
        Self {
            roots,
            provider,
            role,
            name,
        }
    }
}

impl ServerCertVerifier for RoleCheckingServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        check_identity(end_entity, self.role, self.name.as_deref()).map_err(refuse)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The client config only offers TLS 1.3; a TLS 1.2 signature is never acceptable.
        Err(rustls::Error::General(
            "tls 1.2 is not accepted on the grpc link".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
