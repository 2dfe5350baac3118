//! Which master keys the operator configured: `OPENSANDBOX_SECRET_ENCRYPTION_KEY` (the primary,
//! which always encrypts) and `OPENSANDBOX_SECRET_ENCRYPTION_KEY_V1` … `_V9` (older keys kept
//! only so existing ciphertext can still be read). Slot numbers are just places to park keys:
//! a key's version comes from the key registry in the database (see `keyring`), so moving a key
//! between slots, or removing one after a rewrap, never changes which ciphertext it opens.

use crate::error::VaultError;
use crate::master_key::MasterKey;

/// The primary key's environment variable.
pub const PRIMARY_KEY_ENV: &str = "OPENSANDBOX_SECRET_ENCRYPTION_KEY";
/// Prefix of the retired keys' environment variables (`…_V1` to `…_V9`).
pub const RETIRED_KEY_ENV_PREFIX: &str = "OPENSANDBOX_SECRET_ENCRYPTION_KEY_V";
/// Number of retired-key slots.
pub const RETIRED_KEY_SLOTS: u8 = 9;

/// The keys the operator configured.
#[derive(Debug)]
pub struct KeyringConfig {
    pub primary: MasterKey,
    /// (env var name, key) for every retired slot that is set.
    pub retired: Vec<(String, MasterKey)>,
}

impl KeyringConfig {
    /// Reads the keys through `lookup` (the process environment in production, a map in tests).
    /// An unset or empty variable is absent; a set but malformed one is an error naming it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, VaultError> {
        let present = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let primary_text = present(PRIMARY_KEY_ENV).ok_or(VaultError::MissingPrimaryKey {
            env: PRIMARY_KEY_ENV,
        })?;
        let primary = MasterKey::from_hex(&primary_text, PRIMARY_KEY_ENV)?;
        let retired = Self::retired_from_lookup(lookup)?;
        Ok(Self { primary, retired })
    }

    /// Reads only the retired slots (for a primary key that comes from elsewhere, such as the
    /// development key file of the embedded mode).
    pub fn retired_from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<(String, MasterKey)>, VaultError> {
        let mut retired = Vec::new();
        for slot in 1..=RETIRED_KEY_SLOTS {
            let name = format!("{RETIRED_KEY_ENV_PREFIX}{slot}");
            if let Some(text) = lookup(&name).filter(|value| !value.trim().is_empty()) {
                let key = MasterKey::from_hex(&text, &name)?;
                retired.push((name, key));
            }
        }
        Ok(retired)
    }

    /// Reads the keys from the process environment.
    pub fn from_env() -> Result<Self, VaultError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn missing_primary_says_how_to_fix_it() {
        let error = KeyringConfig::from_lookup(lookup(&[])).unwrap_err();
        assert!(error.to_string().contains("osbd keys generate"));
    }

    #[test]
    fn retired_slots_are_read_and_a_bad_one_is_named() {
        let a = "11".repeat(32);
        let b = "22".repeat(32);
        let config = KeyringConfig::from_lookup(lookup(&[
            (PRIMARY_KEY_ENV, &a),
            ("OPENSANDBOX_SECRET_ENCRYPTION_KEY_V3", &b),
            ("OPENSANDBOX_SECRET_ENCRYPTION_KEY_V4", ""),
        ]))
        .unwrap();
        assert_eq!(config.retired.len(), 1);
        assert_eq!(config.retired[0].0, "OPENSANDBOX_SECRET_ENCRYPTION_KEY_V3");

        let error = KeyringConfig::from_lookup(lookup(&[
            (PRIMARY_KEY_ENV, &a),
            ("OPENSANDBOX_SECRET_ENCRYPTION_KEY_V2", "nothex"),
        ]))
        .unwrap_err();
        assert!(error
            .to_string()
            .contains("OPENSANDBOX_SECRET_ENCRYPTION_KEY_V2"));
    }
}
