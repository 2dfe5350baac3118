//! AES-256-GCM sealing. Ciphertext layout (DESIGN.md §4):
//! `[u16 big-endian key version][12-byte random nonce][ciphertext ‖ 16-byte tag]`.
//! The associated data is the row binding plus the key version, so neither the row nor the
//! header can be changed without failing authentication. Nonces are random per encryption; at
//! 96 bits that is safe far beyond any realistic number of secret writes per key.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

use crate::aad::SecretAad;
use crate::error::VaultError;
use crate::keyring::Keyring;
use crate::secret_value::{SecretValue, MAX_SECRET_VALUE_BYTES};

/// Bytes of the key-version header.
pub const CIPHERTEXT_HEADER_LEN: usize = 2;
/// Bytes of the nonce.
pub const NONCE_LEN: usize = 12;
/// Bytes of the GCM tag.
pub const TAG_LEN: usize = 16;

/// Encrypts `value` under the keyring's primary key for the row `aad`.
pub fn seal(
    keyring: &Keyring,
    aad: &SecretAad,
    value: &SecretValue,
) -> Result<Vec<u8>, VaultError> {
    if value.is_empty() {
        return Err(VaultError::EmptyValue);
    }
    if value.len() > MAX_SECRET_VALUE_BYTES {
        return Err(VaultError::ValueTooLarge {
            len: value.len(),
            max: MAX_SECRET_VALUE_BYTES,
        });
    }
    let version = keyring.primary_version();
    let cipher = Aes256Gcm::new(keyring.primary_key()?.bytes().into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let associated = aad.encode(version);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: value.expose_bytes(),
                aad: &associated,
            },
        )
        .map_err(|_| VaultError::EncryptionFailed("aes-gcm refused the input"))?;
    let mut out = Vec::with_capacity(CIPHERTEXT_HEADER_LEN + NONCE_LEN + sealed.len());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts a ciphertext of the row `aad`, using the key its header names.
pub fn open(
    keyring: &Keyring,
    aad: &SecretAad,
    ciphertext: &[u8],
) -> Result<SecretValue, VaultError> {
    let minimum = CIPHERTEXT_HEADER_LEN + NONCE_LEN + TAG_LEN;
    if ciphertext.len() < minimum {
        return Err(VaultError::CiphertextTooShort {
            len: ciphertext.len(),
            minimum,
        });
    }
    let version = header_version(ciphertext)?;
    let key = keyring
        .key(version)
        .ok_or(VaultError::UnknownKeyVersion { version })?;
    let cipher = Aes256Gcm::new(key.bytes().into());
    let nonce = &ciphertext[CIPHERTEXT_HEADER_LEN..CIPHERTEXT_HEADER_LEN + NONCE_LEN];
    let associated = aad.encode(version);
    let plaintext = cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: &ciphertext[CIPHERTEXT_HEADER_LEN + NONCE_LEN..],
                aad: &associated,
            },
        )
        .map_err(|_| VaultError::Undecryptable { version })?;
    Ok(SecretValue::new(plaintext))
}

/// The key version a ciphertext's header names.
pub(crate) fn header_version(ciphertext: &[u8]) -> Result<u16, VaultError> {
    match ciphertext {
        [high, low, ..] => Ok(u16::from_be_bytes([*high, *low])),
        _ => Err(VaultError::CiphertextTooShort {
            len: ciphertext.len(),
            minimum: CIPHERTEXT_HEADER_LEN + NONCE_LEN + TAG_LEN,
        }),
    }
}

#[cfg(test)]
mod tests {
    use osb_proto::{OrgId, ProjectId};

    use super::*;
    use crate::keyring::RegisteredKey;
    use crate::keyring_config::KeyringConfig;
    use crate::master_key::MasterKey;

    fn keyring_with(primary: &str, retired: &[&str], registry: &[(u16, &str)]) -> Keyring {
        let key = |hex: &str| MasterKey::from_hex(hex, "TEST").unwrap();
        let registered: Vec<RegisteredKey> = registry
            .iter()
            .map(|(version, hex)| RegisteredKey {
                version: *version,
                fingerprint: key(hex).fingerprint(),
            })
            .collect();
        let config = KeyringConfig {
            primary: key(primary),
            retired: retired
                .iter()
                .map(|hex| ("SLOT".to_owned(), key(hex)))
                .collect(),
        };
        Keyring::plan(config, &registered).unwrap().keyring
    }

    fn row(name: &str, version: u64) -> SecretAad {
        SecretAad {
            secret_id: osb_proto::SecretId::new(),
            row_binding: crate::aad::CURRENT_ROW_BINDING,
            org_id: OrgId::new(),
            project_id: ProjectId::new(),
            name: name.to_owned(),
            secret_version: version,
        }
    }

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn round_trip_and_layout() {
        let keyring = keyring_with(K1, &[], &[]);
        let aad = row("API_KEY", 1);
        let value = SecretValue::from_string("sk-test-value".to_owned());
        let sealed = seal(&keyring, &aad, &value).unwrap();
        assert_eq!(&sealed[..2], &1u16.to_be_bytes());
        assert_eq!(sealed.len(), 2 + 12 + "sk-test-value".len() + 16);
        assert_eq!(open(&keyring, &aad, &sealed).unwrap(), value);
    }

    #[test]
    fn nonces_differ_between_encryptions() {
        let keyring = keyring_with(K1, &[], &[]);
        let aad = row("A", 1);
        let value = SecretValue::from_string("same".to_owned());
        assert_ne!(
            seal(&keyring, &aad, &value).unwrap(),
            seal(&keyring, &aad, &value).unwrap()
        );
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let keyring = keyring_with(K1, &[], &[]);
        let aad = row("A", 1);
        let sealed = seal(&keyring, &aad, &SecretValue::from_string("v".to_owned())).unwrap();
        for index in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x01;
            let error = open(&keyring, &aad, &tampered).unwrap_err();
            assert!(
                matches!(
                    error,
                    VaultError::Undecryptable { .. } | VaultError::UnknownKeyVersion { .. }
                ),
                "byte {index}: {error}"
            );
        }
    }

    #[test]
    fn wrong_row_fails_with_a_clear_error() {
        let keyring = keyring_with(K1, &[], &[]);
        let aad = row("A", 1);
        let sealed = seal(&keyring, &aad, &SecretValue::from_string("v".to_owned())).unwrap();
        let mut other_name = aad.clone();
        other_name.name = "B".to_owned();
        let mut other_version = aad.clone();
        other_version.secret_version = 2;
        let mut other_project = aad.clone();
        other_project.project_id = ProjectId::new();
        let mut other_org = aad.clone();
        other_org.org_id = OrgId::new();
        for wrong in [other_name, other_version, other_project, other_org] {
            let error = open(&keyring, &wrong, &sealed).unwrap_err();
            assert!(error.to_string().contains("belongs to another secret row"));
        }
    }

    #[test]
    fn short_and_unknown_version_ciphertexts_are_explained() {
        let keyring = keyring_with(K1, &[], &[]);
        let aad = row("A", 1);
        let short = open(&keyring, &aad, &[0, 1, 2]).unwrap_err();
        assert!(short.to_string().contains("truncated or corrupt"));
        let mut sealed = seal(&keyring, &aad, &SecretValue::from_string("v".to_owned())).unwrap();
        sealed[0] = 0x7f;
        let unknown = open(&keyring, &aad, &sealed).unwrap_err();
        assert!(matches!(unknown, VaultError::UnknownKeyVersion { version } if version == 0x7f01));
        assert!(unknown
            .to_string()
            .contains("OPENSANDBOX_SECRET_ENCRYPTION_KEY_V"));
    }

    #[test]
    fn rotation_keeps_old_rows_readable_and_encrypts_with_the_new_key() {
        let before = keyring_with(K1, &[], &[]);
        let aad = row("A", 1);
        let old = seal(&before, &aad, &SecretValue::from_string("old".to_owned())).unwrap();
        let after = keyring_with(K2, &[K1], &[(1, K1)]);
        assert_eq!(after.primary_version(), 2);
        assert_eq!(
            open(&after, &aad, &old).unwrap(),
            SecretValue::from_string("old".to_owned())
        );
        let new = seal(&after, &aad, &SecretValue::from_string("new".to_owned())).unwrap();
        assert_eq!(&new[..2], &2u16.to_be_bytes());
        // Without the old key, the old row is refused with the version named.
        let retired_gone = keyring_with(K2, &[], &[(1, K1), (2, K2)]);
        assert!(matches!(
            open(&retired_gone, &aad, &old),
            Err(VaultError::UnknownKeyVersion { version: 1 })
        ));
    }

    #[test]
    fn empty_and_oversized_values_are_refused() {
        let keyring = keyring_with(K1, &[], &[]);
        let aad = row("A", 1);
        assert!(matches!(
            seal(&keyring, &aad, &SecretValue::new(Vec::new())),
            Err(VaultError::EmptyValue)
        ));
        let big = SecretValue::new(vec![b'x'; MAX_SECRET_VALUE_BYTES + 1]);
        assert!(matches!(
            seal(&keyring, &aad, &big),
            Err(VaultError::ValueTooLarge { .. })
        ));
    }
}
