//! `MasterKey`: 32 bytes of AES-256 key parsed from 64 hex characters, zeroised on drop, never
//! printable. Its `KeyFingerprint` (HMAC-SHA256 of a fixed label under the key, truncated to 16
//! bytes) identifies it in the key registry without revealing anything about it.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::VaultError;

/// Length of a master key in hex characters.
pub const MASTER_KEY_HEX_LEN: usize = 64;
const FINGERPRINT_LABEL: &[u8] = b"opensandbox master key fingerprint v1";

/// An AES-256 master key.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Parses 64 hex characters (surrounding whitespace is ignored). `source` names where the
    /// text came from (an env var) so the error can say which setting is wrong.
    pub fn from_hex(text: &str, source: &str) -> Result<Self, VaultError> {
        let trimmed = text.trim();
        if trimmed.len() != MASTER_KEY_HEX_LEN {
            return Err(VaultError::MalformedKey {
                source_name: source.to_owned(),
                reason: format!(
                    "expected {MASTER_KEY_HEX_LEN} hex characters, got {}",
                    trimmed.len()
                ),
            });
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(trimmed, bytes.as_mut()).map_err(|_| VaultError::MalformedKey {
            source_name: source.to_owned(),
            reason: "contains characters other than 0-9 and a-f".to_owned(),
        })?;
        if bytes.iter().all(|byte| *byte == 0) {
            return Err(VaultError::MalformedKey {
                source_name: source.to_owned(),
                reason: "is all zeros; generate one with `osbd keys generate`".to_owned(),
            });
        }
        Ok(Self(bytes))
    }

    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        Self(bytes)
    }

    /// The key as 64 lowercase hex characters, for `osbd keys generate` only.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
    }

    /// The public fingerprint.
    pub fn fingerprint(&self) -> KeyFingerprint {
        // HMAC accepts keys of any length, so this cannot fail; fall back to an impossible
        // fingerprint rather than panic if it ever did.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.as_ref()) else {
            return KeyFingerprint(String::from("invalid"));
        };
        mac.update(FINGERPRINT_LABEL);
        let mut digest = mac.finalize().into_bytes();
        let fingerprint = hex::encode(&digest[..16]);
        digest.zeroize();
        KeyFingerprint(fingerprint)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(fingerprint={})", self.fingerprint())
    }
}

/// A public identifier of a master key (32 hex characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyFingerprint(String);

impl KeyFingerprint {
    /// Wraps a stored fingerprint.
    pub fn from_stored(text: &str) -> Self {
        Self(text.to_owned())
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn parses_64_hex_and_round_trips() {
        let key = MasterKey::from_hex(&format!("  {KEY_A}\n"), "TEST").unwrap();
        assert_eq!(key.to_hex().as_str(), KEY_A);
    }

    #[test]
    fn malformed_keys_are_refused_with_the_setting_name() {
        let short = MasterKey::from_hex("abcd", "OPENSANDBOX_SECRET_ENCRYPTION_KEY").unwrap_err();
        assert!(short
            .to_string()
            .contains("OPENSANDBOX_SECRET_ENCRYPTION_KEY"));
        assert!(short.to_string().contains("64 hex"));
        let not_hex = MasterKey::from_hex(&"zz".repeat(32), "K").unwrap_err();
        assert!(not_hex.to_string().contains("0-9"));
        let zeros = MasterKey::from_hex(&"0".repeat(64), "K").unwrap_err();
        assert!(zeros.to_string().contains("all zeros"));
    }

    #[test]
    fn fingerprint_is_stable_and_distinct_and_debug_hides_the_key() {
        let a = MasterKey::from_hex(KEY_A, "A").unwrap();
        let a_again = MasterKey::from_hex(KEY_A, "A").unwrap();
        let b = MasterKey::generate();
        assert_eq!(a.fingerprint(), a_again.fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().as_str().len(), 32);
        assert!(!format!("{a:?}").contains(KEY_A));
    }
}
