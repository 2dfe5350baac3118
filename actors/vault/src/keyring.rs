//! The keyring: configured master keys with the version numbers the key registry gave them.
//!
//! The rule (ADR 0002): the version written into a ciphertext header is the number the
//! database's key registry assigned to that key's fingerprint. At start the vault reads the
//! registry; the primary key, if its fingerprint is new, is registered under `max + 1`. So:
//! * the primary key always encrypts, and a new primary always gets a new version, whatever
//!   slot the previous one was moved to: rotation really rotates;
//! * a retired key opens exactly the ciphertext written under its version, found by
//!   fingerprint, so slot numbers are free to change;
//! * a key that is missing for a version still in use is reported (`osbd keys status`) and
//!   decrypting such a row fails with an error naming the version.

use std::collections::BTreeMap;

use crate::error::VaultError;
use crate::keyring_config::KeyringConfig;
use crate::master_key::{KeyFingerprint, MasterKey};

/// A registry entry: a version number and the fingerprint of the key it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredKey {
    pub version: u16,
    pub fingerprint: KeyFingerprint,
}

/// Master keys by version, and which one encrypts.
#[derive(Debug)]
pub struct Keyring {
    primary_version: u16,
    keys: BTreeMap<u16, MasterKey>,
}

/// The outcome of matching the configuration against the registry.
#[derive(Debug)]
pub struct KeyringPlan {
    pub keyring: Keyring,
    /// The primary key is new: register it under this version before encrypting with it.
    pub register: Option<RegisteredKey>,
    /// Retired slots whose key the registry has never seen (useless: no ciphertext uses them).
    pub unknown_retired: Vec<String>,
    /// Registered versions whose key is not configured (rows under them cannot be read).
    pub missing_versions: Vec<u16>,
}

impl Keyring {
    /// Matches configured keys to registered versions; see the module docs for the rule.
    pub fn plan(
        config: KeyringConfig,
        registered: &[RegisteredKey],
    ) -> Result<KeyringPlan, VaultError> {
        let version_of = |fingerprint: &KeyFingerprint| {
            registered
                .iter()
                .find(|entry| &entry.fingerprint == fingerprint)
                .map(|entry| entry.version)
        };
        let mut keys = BTreeMap::new();
        let mut unknown_retired = Vec::new();
        for (slot, key) in config.retired {
            match version_of(&key.fingerprint()) {
                Some(version) => {
                    keys.insert(version, key);
                }
                None => unknown_retired.push(slot),
            }
        }
        let primary_fingerprint = config.primary.fingerprint();
        let (primary_version, register) = match version_of(&primary_fingerprint) {
            Some(version) => (version, None),
            None => {
                let highest = registered.iter().map(|entry| entry.version).max();
                let next = match highest {
                    None => 1,
                    Some(u16::MAX) => {
                        return Err(VaultError::KeyVersionsExhausted { max: u16::MAX })
                    }
                    Some(highest) => highest + 1,
                };
                let entry = RegisteredKey {
                    version: next,
                    fingerprint: primary_fingerprint,
                };
                (next, Some(entry))
            }
        };
        keys.insert(primary_version, config.primary);
        let missing_versions = registered
            .iter()
            .map(|entry| entry.version)
            .filter(|version| !keys.contains_key(version))
            .collect();
        Ok(KeyringPlan {
            keyring: Keyring {
                primary_version,
                keys,
            },
            register,
            unknown_retired,
            missing_versions,
        })
    }

    /// The version new ciphertext is written under.
    pub fn primary_version(&self) -> u16 {
        self.primary_version
    }

    /// The key for a version, if configured.
    pub fn key(&self, version: u16) -> Option<&MasterKey> {
        self.keys.get(&version)
    }

    /// The primary key.
    pub(crate) fn primary_key(&self) -> Result<&MasterKey, VaultError> {
        self.key(self.primary_version)
            .ok_or(VaultError::UnknownKeyVersion {
                version: self.primary_version,
            })
    }

    /// Drops the key of `version` (a locked vault forgets its unregistered primary, so nothing
    /// can ever be sealed or opened under a version the registry did not give it).
    pub(crate) fn forget(&mut self, version: u16) {
        self.keys.remove(&version);
    }

    /// Gives the keys back (to re-plan after losing a registration race).
    pub(crate) fn into_keys(self) -> BTreeMap<u16, MasterKey> {
        self.keys
    }

    /// Every configured version, ascending.
    pub fn versions(&self) -> Vec<u16> {
        self.keys.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_hex(&format!("{byte:02x}").repeat(32), "TEST").unwrap()
    }

    fn config(primary: u8, retired: &[u8]) -> KeyringConfig {
        KeyringConfig {
            primary: key(primary),
            retired: retired
                .iter()
                .enumerate()
                .map(|(slot, byte)| (format!("SLOT{}", slot + 1), key(*byte)))
                .collect(),
        }
    }

    #[test]
    fn first_start_registers_the_primary_as_version_1() {
        let plan = Keyring::plan(config(1, &[]), &[]).unwrap();
        assert_eq!(plan.keyring.primary_version(), 1);
        assert_eq!(plan.register.unwrap().version, 1);
    }

    #[test]
    fn a_new_primary_always_gets_a_new_version_whatever_slot_the_old_one_is_in() {
        let registry = vec![RegisteredKey {
            version: 1,
            fingerprint: key(1).fingerprint(),
        }];
        // The old primary parked in an arbitrary slot; the new one is primary.
        let plan = Keyring::plan(config(2, &[9, 1]), &registry).unwrap();
        assert_eq!(plan.keyring.primary_version(), 2);
        assert!(plan.keyring.key(1).is_some());
        assert_eq!(plan.unknown_retired, vec!["SLOT1".to_owned()]);
        assert!(plan.missing_versions.is_empty());
    }

    #[test]
    fn forgetting_the_old_key_is_reported_as_missing() {
        let registry = vec![RegisteredKey {
            version: 1,
            fingerprint: key(1).fingerprint(),
        }];
        let plan = Keyring::plan(config(2, &[]), &registry).unwrap();
        assert_eq!(plan.missing_versions, vec![1]);
    }

    #[test]
    fn a_known_primary_is_not_registered_again() {
        let registry = vec![
            RegisteredKey {
                version: 1,
                fingerprint: key(1).fingerprint(),
            },
            RegisteredKey {
                version: 2,
                fingerprint: key(2).fingerprint(),
            },
        ];
        // Rolling back to the old key as primary is allowed and keeps its version.
        let plan = Keyring::plan(config(1, &[2]), &registry).unwrap();
        assert_eq!(plan.keyring.primary_version(), 1);
        assert!(plan.register.is_none());
        assert_eq!(plan.keyring.versions(), vec![1, 2]);
    }
}
