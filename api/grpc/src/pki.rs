//! Mints the gRPC PKI with rcgen (ECDSA P-256): a CA, and control-plane or worker certificates
//! carrying their identity URI (`spiffe://opensandbox/<role>/<name>`) and both TLS client and
//! server usages. Backs `osbd certs init|issue` and the automatic development PKI of `osbd up`.
//! Keys are written mode 0600 through a temporary file; nothing is ever overwritten unless the
//! caller forces it, and a refusal writes nothing. This module must never print or log a key.

use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, PKCS_ECDSA_P256_SHA256,
};

use super::config::TlsPaths;
use super::identity::{IdentityError, PeerIdentity, PeerRole};

/// The CA certificate inside a PKI directory (public: copy it to every control plane and worker).
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA private key inside a PKI directory (mode 0600; keep it offline in production).
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// The name of the control-plane and worker identities of the development PKI.
pub const DEV_IDENTITY_NAME: &str = "local";

const ORGANISATION: &str = "OpenSandbox";
const CA_COMMON_NAME: &str = "OpenSandbox gRPC CA";
const CA_VALIDITY_DAYS: i64 = 3650;
const LEAF_VALIDITY_DAYS: i64 = 730;

/// What went wrong while minting or writing the PKI. Never holds key material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("refusing to overwrite {}; pass --force to replace them (certificates issued by a replaced CA stop working)", .paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", "))]
    Exists { paths: Vec<PathBuf> },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a usable CA file ({reason}); point --ca-dir at the directory `osbd certs init` created")]
    BadCa { path: PathBuf, reason: String },
    #[error("the development PKI in {dir} is incomplete ({missing} is missing); delete the directory to generate a fresh one")]
    IncompleteDev { dir: PathBuf, missing: PathBuf },
    #[error("{given:?} is neither an IP address nor a DNS name")]
    BadHost { given: String },
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("minting a certificate failed: {0}")]
    Mint(#[from] rcgen::Error),
}

/// A certificate and its key on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What `osbd certs init` created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiInit {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub control: CertPaths,
}

/// The development PKI: one CA, one control-plane and one worker identity, both `local`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevPki {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub control: CertPaths,
    pub worker: CertPaths,
}

impl DevPki {
    /// The TLS paths the control plane of `osbd up` uses.
    pub fn control_tls(&self) -> TlsPaths {
        TlsPaths {
            ca: self.ca_cert.clone(),
            cert: self.control.cert.clone(),
            key: self.control.key.clone(),
        }
    }

    /// The TLS paths the worker of `osbd up` uses.
    pub fn worker_tls(&self) -> TlsPaths {
        TlsPaths {
            ca: self.ca_cert.clone(),
            cert: self.worker.cert.clone(),
            key: self.worker.key.clone(),
        }
    }
}

/// Where the certificate and key of `identity` go inside `dir`.
pub fn cert_paths(dir: &Path, identity: &PeerIdentity) -> CertPaths {
    let stem = format!("{}-{}", identity.role(), identity.name());
    CertPaths {
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}-key.pem")),
    }
}

/// Creates a CA and one control-plane certificate in `out`.
pub fn init(out: &Path, control_name: &str, force: bool) -> Result<PkiInit, PkiError> {
    let control = PeerIdentity::new(PeerRole::Control, control_name)?;
    let created = PkiInit {
        ca_cert: out.join(CA_CERT_FILE),
        ca_key: out.join(CA_KEY_FILE),
        control: cert_paths(out, &control),
    };
    refuse_existing(
        &[
            &created.ca_cert,
            &created.ca_key,
            &created.control.cert,
            &created.control.key,
        ],
        force,
    )?;
    create_dir(out)?;
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let params = ca_params();
    let ca_cert = params.self_signed(&ca_key)?;
    let issuer = Issuer::new(params, ca_key);
    let (leaf_pem, leaf_key_pem) = mint_leaf(&issuer, &control, &[])?;
    write_file(
        &created.ca_key,
        issuer.key().serialize_pem().as_bytes(),
        0o600,
        force,
    )?;
    write_file(&created.ca_cert, ca_cert.pem().as_bytes(), 0o644, force)?;
    write_file(&created.control.key, leaf_key_pem.as_bytes(), 0o600, force)?;
    write_file(&created.control.cert, leaf_pem.as_bytes(), 0o644, force)?;
    tracing::info!(dir = %out.display(), "grpc pki created");
    Ok(created)
}

/// Issues a certificate for `identity` signed by the CA in `ca_dir`, written into `out`.
/// `hosts` become DNS or IP names too (informational: peers are verified by identity).
pub fn issue(
    ca_dir: &Path,
    identity: &PeerIdentity,
    hosts: &[String],
    out: &Path,
    force: bool,
) -> Result<CertPaths, PkiError> {
    let created = cert_paths(out, identity);
    refuse_existing(&[&created.cert, &created.key], force)?;
    let issuer = load_issuer(ca_dir)?;
    let (leaf_pem, leaf_key_pem) = mint_leaf(&issuer, identity, hosts)?;
    create_dir(out)?;
    write_file(&created.key, leaf_key_pem.as_bytes(), 0o600, force)?;
    write_file(&created.cert, leaf_pem.as_bytes(), 0o644, force)?;
    tracing::info!(identity = %identity, dir = %out.display(), "grpc certificate issued");
    Ok(created)
}

/// The development PKI in `dir` (a CA plus `control:local` and `worker:local` valid for
/// localhost): reused when complete, created when absent, refused when half there.
pub fn generate_dev_pki(dir: &Path) -> Result<DevPki, PkiError> {
    let control = PeerIdentity::new(PeerRole::Control, DEV_IDENTITY_NAME)?;
    let worker = PeerIdentity::new(PeerRole::Worker, DEV_IDENTITY_NAME)?;
    let pki = DevPki {
        ca_cert: dir.join(CA_CERT_FILE),
        ca_key: dir.join(CA_KEY_FILE),
        control: cert_paths(dir, &control),
        worker: cert_paths(dir, &worker),
    };
    let files = [
        &pki.ca_cert,
        &pki.ca_key,
        &pki.control.cert,
        &pki.control.key,
        &pki.worker.cert,
        &pki.worker.key,
    ];
    let missing: Vec<&PathBuf> = files
        .iter()
        .copied()
        .filter(|path| !path.exists())
        .collect();
    if missing.is_empty() {
        return Ok(pki);
    }
    if missing.len() != files.len() {
        return Err(PkiError::IncompleteDev {
            dir: dir.to_owned(),
            missing: missing[0].clone(),
        });
    }
    init(dir, DEV_IDENTITY_NAME, false)?;
    let hosts = [
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    issue(dir, &worker, &hosts, dir, false)?;
    Ok(pki)
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    // A distinct name per CA: a certificate from another OpenSandbox CA then fails as an
    // unknown issuer instead of looking like a forged signature, and operators can tell CAs apart.
    let now = time::OffsetDateTime::now_utc();
    name.push(
        DnType::CommonName,
        format!("{CA_COMMON_NAME} {}", now.unix_timestamp_nanos()),
    );
    name.push(DnType::OrganizationName, ORGANISATION);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
    params
}

/// Mints a leaf with its own fresh key; returns (certificate PEM, key PEM).
fn mint_leaf(
    issuer: &Issuer<'_, KeyPair>,
    identity: &PeerIdentity,
    hosts: &[String],
) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, identity.to_string());
    name.push(DnType::OrganizationName, ORGANISATION);
    params.distinguished_name = name;
    params.subject_alt_names = vec![SanType::URI(identity.uri().try_into()?)];
    for host in hosts {
        let host = host.trim();
        let san = match host.parse::<IpAddr>() {
            Ok(address) => SanType::IpAddress(address),
            Err(_) => SanType::DnsName(host.try_into().map_err(|_| PkiError::BadHost {
                given: host.to_owned(),
            })?),
        };
        params.subject_alt_names.push(san);
    }
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(LEAF_VALIDITY_DAYS);
    let certificate = params.signed_by(&key, issuer)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

fn load_issuer(ca_dir: &Path) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let cert_path = ca_dir.join(CA_CERT_FILE);
    let key_path = ca_dir.join(CA_KEY_FILE);
    let read = |path: &Path| {
        fs::read_to_string(path).map_err(|source| PkiError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(&cert_path)?;
    let key_pem = read(&key_path)?;
    // The parser's error could quote the file: say only what was expected.
    let key = KeyPair::from_pem(&key_pem).map_err(|_| PkiError::BadCa {
        path: key_path.clone(),
        reason: "not a PEM private key".into(),
    })?;
    let spki = key.subject_public_key_info();
    let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|error| PkiError::BadCa {
        path: cert_path.clone(),
        reason: error.to_string(),
    })?;
    // The certificate must carry this key's public key, or issued certificates would not chain.
    let cert_der = pem_der(&cert_pem).ok_or_else(|| PkiError::BadCa {
        path: cert_path.clone(),
        reason: "no PEM certificate".into(),
    })?;
    if !cert_der
        .windows(spki.len())
        .any(|window| window == spki.as_slice())
    {
        return Err(PkiError::BadCa {
            path: key_path,
            reason: format!("it does not match the certificate {}", cert_path.display()),
        });
    }
    Ok(issuer)
}

fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|der| der.as_ref().to_vec())
}

fn refuse_existing(paths: &[&PathBuf], force: bool) -> Result<(), PkiError> {
    if force {
        return Ok(());
    }
    let existing: Vec<PathBuf> = paths
        .iter()
        .filter(|path| path.exists())
        .map(|path| (*path).clone())
        .collect();
    if existing.is_empty() {
        Ok(())
    } else {
        Err(PkiError::Exists { paths: existing })
    }
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PkiError::Write {
            path: dir.to_owned(),
            source,
        })
}

/// Writes through a temporary file; without `force` the final link fails if the file appeared
/// meanwhile, so an existing file is never replaced.
fn write_file(path: &Path, bytes: &[u8], mode: u32, force: bool) -> Result<(), PkiError> {
    let error = |source| PkiError::Write {
        path: path.to_owned(),
        source,
    };
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&temporary);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(error)?;
    let written = file
        .set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            if force {
                fs::rename(&temporary, path)
            } else {
                fs::hard_link(&temporary, path).and_then(|()| fs::remove_file(&temporary))
            }
        });
    if let Err(source) = written {
        let _ = fs::remove_file(&temporary);
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            return Err(PkiError::Exists {
                paths: vec![path.to_owned()],
            });
        }
        return Err(error(source));
    }
    Ok(())
}
