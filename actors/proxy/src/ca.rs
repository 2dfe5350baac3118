//! The worker's proxy certificate authority: an ECDSA P-256 CA created with rcgen on first start,
//! persisted in the data dir (`proxy-ca.pem`, `proxy-ca-key.pem` with mode 0600), reloaded on
//! restart, and refused (never silently regenerated) when a file is missing or corrupt. Leaf
//! certificates get their own fresh P-256 key, never the CA key. This is the only module that
//! touches rcgen; it must never write the CA key anywhere but its 0600 file.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

/// File name of the CA certificate (PEM) inside the data dir. Install this in sandboxes.
pub const CA_CERT_FILE: &str = "proxy-ca.pem";
/// File name of the CA private key (PEM, mode 0600) inside the data dir.
pub const CA_KEY_FILE: &str = "proxy-ca-key.pem";

const CA_COMMON_NAME: &str = "OpenSandbox worker proxy CA";
const CA_ORGANISATION: &str = "OpenSandbox";

/// What went wrong with the CA. Messages say which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot create the proxy CA directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read proxy CA file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write proxy CA file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("proxy CA file {path} is missing while {other} exists: restore it from backup, or delete both files to mint a new CA (sandboxes must then trust the new CA)")]
    HalfMissing { path: PathBuf, other: PathBuf },
    #[error("proxy CA file {path} is corrupt ({reason}): restore it from backup, or delete both CA files to mint a new CA")]
    Corrupt { path: PathBuf, reason: String },
    #[error("proxy CA key file {path} is readable by others (mode {mode:o}): chmod 600 it")]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("minting a certificate failed: {0}")]
    Mint(#[from] rcgen::Error),
    #[error("the TLS library refused the minted certificate: {0}")]
    Tls(#[from] rustls::Error),
    #[error("minting was interrupted (the proxy is shutting down)")]
    MintInterrupted,
}

/// The CA: its certificate (what sandboxes trust) and the issuer that signs leaves.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    cert_path: PathBuf,
    leaf_lifetime: Duration,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_path", &self.cert_path)
            .field("leaf_lifetime", &self.leaf_lifetime)
            .finish_non_exhaustive()
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    name.push(DnType::OrganizationName, CA_ORGANISATION);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl CertificateAuthority {
    /// Loads the CA from `data_dir`, or creates it when neither file exists.
    pub fn load_or_create(data_dir: &Path, leaf_lifetime: Duration) -> Result<Self, CaError> {
        let cert_path = data_dir.join(CA_CERT_FILE);
        let key_path = data_dir.join(CA_KEY_FILE);
        match (cert_path.exists(), key_path.exists()) {
            (false, false) => Self::create(data_dir, &cert_path, &key_path)?,
            (true, false) => {
                return Err(CaError::HalfMissing {
                    path: key_path,
                    other: cert_path,
                })
            }
            (false, true) => {
                return Err(CaError::HalfMissing {
                    path: cert_path,
                    other: key_path,
                })
            }
            (true, true) => {}
        }
        Self::load(&cert_path, &key_path, leaf_lifetime)
    }

    fn create(data_dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), CaError> {
        fs::create_dir_all(data_dir).map_err(|source| CaError::CreateDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = ca_params();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key)?;
        write_private(key_path, key.serialize_pem().as_bytes())?;
        write_atomically(cert_path, cert.pem().as_bytes(), 0o644)?;
        tracing::info!(path = %cert_path.display(), "proxy ca created");
        Ok(())
    }

    fn load(cert_path: &Path, key_path: &Path, leaf_lifetime: Duration) -> Result<Self, CaError> {
        let mode = fs::metadata(key_path)
            .map_err(|source| CaError::Read {
                path: key_path.to_owned(),
                source,
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(CaError::KeyPermissions {
                path: key_path.to_owned(),
                mode,
            });
        }
        let key_pem = fs::read_to_string(key_path).map_err(|source| CaError::Read {
            path: key_path.to_owned(),
            source,
        })?;
        let key = KeyPair::from_pem(&key_pem).map_err(|error| CaError::Corrupt {
            path: key_path.to_owned(),
            reason: format!("not a PEM private key: {error}"),
        })?;
        let corrupt_cert = |reason: &str| CaError::Corrupt {
            path: cert_path.to_owned(),
            reason: reason.to_owned(),
        };
        let cert_pem = fs::read_to_string(cert_path).map_err(|source| CaError::Read {
            path: cert_path.to_owned(),
            source,
        })?;
        let mut reader = std::io::BufReader::new(cert_pem.as_bytes());
        let cert_der = rustls_pemfile::certs(&mut reader)
            .next()
            .ok_or_else(|| corrupt_cert("no PEM certificate"))?
            .map_err(|_| corrupt_cert("unreadable PEM"))?;
        // The certificate must carry this key's public key, or leaves would not chain.
        let spki = key.subject_public_key_info();
        if !contains(cert_der.as_ref(), &spki) {
            return Err(corrupt_cert("certificate does not match the CA key"));
        }
        if !key.is_compatible(&PKCS_ECDSA_P256_SHA256) {
            return Err(CaError::Corrupt {
                path: key_path.to_owned(),
                reason: "not an ECDSA P-256 key".into(),
            });
        }
        Ok(Self {
            cert_pem,
            cert_der,
            issuer: Issuer::new(ca_params(), key),
            cert_path: cert_path.to_owned(),
            leaf_lifetime,
        })
    }

    /// The CA certificate in PEM: what the runtime installs in sandboxes.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate in DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Where the CA certificate lives on disk.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// Lifetime of minted leaves.
    pub fn leaf_lifetime(&self) -> Duration {
        self.leaf_lifetime
    }

    /// Mints a leaf for one host (DNS name or IP literal) with its own fresh key.
    pub fn mint_leaf(&self, host: &str) -> Result<Arc<CertifiedKey>, CaError> {
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(vec![host.to_owned()])?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, host);
        params.distinguished_name = name;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        let lifetime =
            time::Duration::try_from(self.leaf_lifetime).unwrap_or(time::Duration::days(7));
        params.not_after = now + lifetime;
        let leaf = params.signed_by(&leaf_key, &self.issuer)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = rustls::crypto::ring::default_provider();
        let signing_key = provider.key_provider.load_private_key(key_der)?;
        let chain = vec![leaf.der().clone(), self.cert_der.clone()];
        Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    write_atomically(path, bytes, 0o600)
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaError> {
    let temporary = path.with_extension("tmp");
    let error = |source| CaError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .map_err(error)?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(error)?;
    file.write_all(bytes).map_err(error)?;
    file.sync_all().map_err(error)?;
    fs::rename(&temporary, path).map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

    #[test]
    fn created_once_then_reloaded_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = CertificateAuthority::load_or_create(dir.path(), LIFETIME).unwrap();
        let mode = fs::metadata(dir.path().join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let second = CertificateAuthority::load_or_create(dir.path(), LIFETIME).unwrap();
        assert_eq!(first.cert_pem(), second.cert_pem());
        let leaf = second.mint_leaf("api.example.test").unwrap();
        assert_eq!(leaf.cert.len(), 2);
        assert_eq!(&leaf.cert[1], first.cert_der());
        assert!(second.mint_leaf("127.0.0.1").is_ok());
    }

    #[test]
    fn corrupt_or_half_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(dir.path(), LIFETIME).unwrap();
        let cert_path = dir.path().join(CA_CERT_FILE);
        fs::write(&cert_path, "garbage").unwrap();
        let error = CertificateAuthority::load_or_create(dir.path(), LIFETIME).unwrap_err();
        assert!(matches!(error, CaError::Corrupt { .. }), "{error}");
        fs::remove_file(&cert_path).unwrap();
        let error = CertificateAuthority::load_or_create(dir.path(), LIFETIME).unwrap_err();
        assert!(matches!(error, CaError::HalfMissing { .. }), "{error}");
        // A certificate that does not match the key.
        let other = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(other.path(), LIFETIME).unwrap();
        fs::copy(other.path().join(CA_CERT_FILE), &cert_path).unwrap();
        let error = CertificateAuthority::load_or_create(dir.path(), LIFETIME).unwrap_err();
        assert!(error.to_string().contains("does not match"), "{error}");
    }

    #[test]
    fn world_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::load_or_create(dir.path(), LIFETIME).unwrap();
        fs::set_permissions(
            dir.path().join(CA_KEY_FILE),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let error = CertificateAuthority::load_or_create(dir.path(), LIFETIME).unwrap_err();
        assert!(matches!(error, CaError::KeyPermissions { .. }));
    }
}
