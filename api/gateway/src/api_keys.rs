//! API keys: `osk_` + 40 lowercase hex characters (20 random bytes). Only the SHA-256 of a key
//! is stored; the key itself is shown once, when it is created. The `osk_` prefix keeps keys
//! apart from sealed tokens (`osb_sealed_…`) and makes leaked keys easy to scan for.

use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use sha2::{Digest, Sha256};

/// Prefix of every API key.
pub const API_KEY_PREFIX: &str = "osk_";

/// A freshly generated key (shown once).
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl ApiKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(Zeroizing::new(format!(
            "{API_KEY_PREFIX}{}",
            hex::encode(bytes)
        )))
    }

    /// The key text, to print once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short display prefix (`osk_1a2b…`) that identifies the key in listings.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(API_KEY_PREFIX.len() + 6).collect()
    }

    /// The stored hash.
    pub fn hash(&self) -> String {
        hash_api_key(&self.0)
    }
}

/// SHA-256 hex of a presented key (keys are 160-bit random, so a fast hash is appropriate).
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}
