//! Vault errors. Each message says what is wrong and what to do, and none can contain a secret
//! value or key material: variants carry only names, versions, lengths and env-var names.

use osb_store::StoreError;

/// Why a vault operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{env} is not set: generate a key with `osbd keys generate` and export it (see docs/security/keys.md)")]
    MissingPrimaryKey { env: &'static str },
    #[error("{source_name} is malformed: it {reason}")]
    MalformedKey { source_name: String, reason: String },
    #[error("ciphertext is {len} bytes, shorter than the {minimum}-byte minimum: the stored row is truncated or corrupt")]
    CiphertextTooShort { len: usize, minimum: usize },
    #[error("ciphertext was written with key version {version}, which is not configured: add that key back as OPENSANDBOX_SECRET_ENCRYPTION_KEY_V<n> (`osbd keys status` lists the fingerprint it needs)")]
    UnknownKeyVersion { version: u16 },
    #[error("ciphertext failed authentication under key version {version}: it was tampered with or belongs to another secret row")]
    Undecryptable { version: u16 },
    #[error("encryption failed: {0}")]
    EncryptionFailed(&'static str),
    #[error("secret value is empty: a secret needs a non-empty value")]
    EmptyValue,
    #[error("secret value is {len} bytes, over the {max}-byte limit")]
    ValueTooLarge { len: usize, max: usize },
    #[error("all {max} key versions are used up: rewrap, then start a new key registry")]
    KeyVersionsExhausted { max: u16 },
    #[error("secret {name} kept changing while it was being written; retry the request")]
    ContendedWrite { name: String },
    #[error("the secret vault is locked: {reason}")]
    Locked { reason: String },
    #[error("secret {name} is sealed with row-binding layout {binding}, which this vault no longer accepts (layouts below {floor} were retired after a complete rewrap): the row was restored from an old backup or tampered with; set the secret again")]
    RetiredRowBinding {
        name: String,
        binding: u16,
        floor: u16,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}
