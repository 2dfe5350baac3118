//! The secret vault: seals secret values at rest with AES-256-GCM under versioned master keys,
//! binds every ciphertext to its row (row id, org, project, secret name, secret version), rotates
//! keys and re-encrypts ("rewraps") stored secrets onto the current key and binding. A new
//! primary key that would leave stored secrets unreadable locks the vault instead (ADR 0019).
//!
//! It is the only crate that touches `aes-gcm`, and the only place a plaintext secret value is
//! produced from storage. It must never log, print, return in an error or persist a plaintext
//! value or a master key: values travel as [`SecretValue`], keys as [`MasterKey`], both zeroised
//! on drop with redacting `Debug`.
//!
//! Pure core (no I/O): [`MasterKey`], [`KeyringConfig`], [`Keyring`], [`seal`]/[`open`].
//! Store-backed service: [`Vault`] (open with key registration, put/get/delete secrets, rewrap,
//! fan-out to workers). Actor shell: [`SecretVaultActor`] (supervised; fan-out messages).

#![forbid(unsafe_code)]

mod aad;
mod actor;
mod cipher;
mod delivery;
mod error;
mod fanout;
mod keyring;
mod keyring_config;
mod master_key;
mod queues;
mod rewrap;
mod secret_value;
mod vault;

pub use aad::{SecretAad, CURRENT_ROW_BINDING, LEGACY_ROW_BINDING};
pub use actor::{
    spawn_secret_vault, FanOutRemoval, FanOutSecret, GetVaultState, PanicOnNextFanOut,
    SecretVaultActor, VaultActorError, VaultObservableState,
};
pub use cipher::{open, seal, CIPHERTEXT_HEADER_LEN, NONCE_LEN, TAG_LEN};
pub use delivery::DeliveryPolicy;
pub use error::VaultError;
pub use fanout::{FanoutReport, SecretPush, SecretPusher};
pub use keyring::{Keyring, KeyringPlan, RegisteredKey};
pub use keyring_config::{
    KeyringConfig, PRIMARY_KEY_ENV, RETIRED_KEY_ENV_PREFIX, RETIRED_KEY_SLOTS,
};
pub use master_key::{KeyFingerprint, MasterKey, MASTER_KEY_HEX_LEN};
pub use rewrap::RewrapReport;
pub use secret_value::{SecretValue, MAX_SECRET_VALUE_BYTES};
pub use vault::{
    KeyLossPolicy, KeyStatus, StoredSecret, Vault, VaultReadiness, ACCEPT_KEY_LOSS_ENV,
};
