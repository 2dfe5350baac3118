//! The real value of a secret while it lives in the proxy: a zeroizing byte buffer whose `Debug`
//! prints only its length. It must never be printed, logged, serialised or put in an error.

use std::fmt;

use secrecy::{ExposeSecret, SecretSlice};

/// A plaintext secret value. Zeroed on drop; `Debug` shows `SecretValue(<n> bytes)`.
pub struct SecretValue(SecretSlice<u8>);

impl SecretValue {
    /// Wraps bytes received from the vault. The caller's buffer is moved, not copied.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(SecretSlice::from(bytes))
    }

    /// The bytes, for substitution and scrubbing only.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// Length in bytes (safe to report).
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Whether the value is empty (the registry refuses empty values).
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl From<&str> for SecretValue {
    fn from(text: &str) -> Self {
        Self::new(text.as_bytes().to_vec())
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let value = SecretValue::from("canary-value-123");
        let debug = format!("{value:?}");
        assert!(!debug.contains("canary"));
        assert_eq!(debug, "SecretValue(16 bytes)");
    }
}
