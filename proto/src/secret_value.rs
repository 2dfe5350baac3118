//! `SecretValue`: a plaintext secret in memory, the one type every crate holds a value in — the
//! gateway reads a `PUT` body into it, the vault encrypts from it and decrypts into it, the
//! control plane hands it to the worker link, the proxy substitutes and scrubs from it.
//! Zeroised on drop; `Debug` prints only `SecretValue([redacted])`; no `Display`, no
//! `Serialize`, no length in `Debug`. The only way to read it is `expose_bytes`, which makes
//! every use greppable.
//!
//! This crate defines the type and never holds a value itself.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};

/// A plaintext secret value.
pub struct SecretValue(SecretBox<Vec<u8>>);

impl SecretValue {
    /// Wraps bytes (taking ownership so no unzeroised copy is left with the caller).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// Wraps a string (its buffer is moved, not copied).
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

    /// True for an empty value (refused by the vault and the proxy).
    pub fn is_empty(&self) -> bool {
        self.expose_bytes().is_empty()
    }
}

impl From<&str> for SecretValue {
    fn from(text: &str) -> Self {
        Self::new(text.as_bytes().to_vec())
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
    fn debug_is_redacted_and_says_nothing_of_the_value() {
        let value = SecretValue::from_string("sk-live-123".to_owned());
        let printed = format!("{value:?} {value:#?}");
        assert!(!printed.contains("sk-live"));
        assert!(printed.contains("redacted"));
        // Not even the length, which narrows a guess.
        assert!(!printed.contains("11"), "{printed}");
    }

    #[test]
    fn equal_values_compare_equal_and_clones_are_independent() {
        let value = SecretValue::from("canary-value-123");
        let copy = value.clone();
        assert_eq!(value, copy);
        assert_ne!(value, SecretValue::from("canary-value-124"));
        assert_eq!(copy.expose_bytes(), b"canary-value-123");
        assert_eq!((value.len(), value.is_empty()), (16, false));
    }
}
