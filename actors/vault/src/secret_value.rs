//! `SecretValue`: a plaintext secret in memory. Zeroised on drop; `Debug` prints only
//! `[redacted]`; no `Display`, no `Serialize`. The only way to read it is `expose_bytes`, which
//! makes every use greppable.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};

/// Upper bound for a secret value (64 KiB): large enough for a PEM bundle or a service-account
/// JSON, small enough that a mistaken upload of a file is refused.
pub const MAX_SECRET_VALUE_BYTES: usize = 64 * 1024;

/// A plaintext secret value.
pub struct SecretValue(SecretBox<Vec<u8>>);

impl SecretValue {
    /// Wraps bytes (taking ownership so no unzeroised copy is left with the caller).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// Wraps a string.
    pub fn from_string(text: String) -> Self {
        Self::new(text.into_bytes())
    }

    /// The plaintext bytes. Every call site is a place the value is used; keep them few.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// Length in bytes (not secret in itself, but do not log it next to a name needlessly).
    pub fn len(&self) -> usize {
        self.expose_bytes().len()
    }

    /// True for an empty value (refused by the vault).
    pub fn is_empty(&self) -> bool {
        self.expose_bytes().is_empty()
    }
}

impl Clone for SecretValue {
    fn clone(&self) -> Self {
        Self::new(self.expose_bytes().to_vec())
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([redacted])")
    }
}

impl PartialEq for SecretValue {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.expose_bytes().ct_eq(other.expose_bytes()).into()
    }
}

impl Eq for SecretValue {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let value = SecretValue::from_string("sk-live-123".to_owned());
        let printed = format!("{value:?} {:#?}", value);
        assert!(!printed.contains("sk-live"));
        assert!(printed.contains("redacted"));
    }
}
