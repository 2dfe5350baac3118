//! The sealed token: `osb_sealed_` followed by 32 lowercase hex characters (16 random bytes),
//! 43 characters in all. One fresh token per secret per sandbox. A token is not the secret, but
//! it is still a capability inside its sandbox, so events and logs name secrets, never tokens;
//! `Debug` shows only the first hex characters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The prefix every sealed token starts with. The proxy scans for it with `memchr::memmem`.
pub const SEALED_TOKEN_PREFIX: &str = "osb_sealed_";
/// Number of hex characters after the prefix.
pub const SEALED_TOKEN_HEX_LEN: usize = 32;
/// Total length of a sealed token in bytes.
pub const SEALED_TOKEN_LEN: usize = SEALED_TOKEN_PREFIX.len() + SEALED_TOKEN_HEX_LEN;

/// Why a string is not a sealed token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a sealed token: expected `osb_sealed_` followed by 32 lowercase hex characters")]
pub struct SealedTokenParseError;

/// A sealed token, stored as its 43 ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SealedToken([u8; SEALED_TOKEN_LEN]);

impl SealedToken {
    /// Builds a token from 16 random bytes (the caller supplies randomness so this crate stays
    /// free of an RNG dependency; use a CSPRNG such as `OsRng`).
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; SEALED_TOKEN_LEN];
        out[..SEALED_TOKEN_PREFIX.len()].copy_from_slice(SEALED_TOKEN_PREFIX.as_bytes());
        for (index, byte) in bytes.iter().enumerate() {
            let at = SEALED_TOKEN_PREFIX.len() + index * 2;
            out[at] = HEX[usize::from(byte >> 4)];
            out[at + 1] = HEX[usize::from(byte & 0x0f)];
        }
        Self(out)
    }

    /// Parses exactly 43 bytes (for example a window found after a prefix match).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealedTokenParseError> {
        if bytes.len() != SEALED_TOKEN_LEN || !bytes.starts_with(SEALED_TOKEN_PREFIX.as_bytes()) {
            return Err(SealedTokenParseError);
        }
        let hex_part = &bytes[SEALED_TOKEN_PREFIX.len()..];
        if !hex_part
            .iter()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte))
        {
            return Err(SealedTokenParseError);
        }
        let mut out = [0u8; SEALED_TOKEN_LEN];
        out.copy_from_slice(bytes);
        Ok(Self(out))
    }

    /// The token's bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        // Invariant: built only from the ASCII prefix and lowercase hex digits.
        std::str::from_utf8(&self.0).unwrap_or(SEALED_TOKEN_PREFIX)
    }

    /// A short, non-usable id for diagnostics: the first 8 hex characters.
    pub fn short_id(&self) -> &str {
        &self.as_str()[SEALED_TOKEN_PREFIX.len()..SEALED_TOKEN_PREFIX.len() + 8]
    }
}

impl fmt::Display for SealedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SealedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SealedToken({}{}…)",
            SEALED_TOKEN_PREFIX,
            self.short_id()
        )
    }
}

impl FromStr for SealedToken {
    type Err = SealedTokenParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(text.as_bytes())
    }
}

impl Serialize for SealedToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SealedToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_prefix_plus_32_lowercase_hex() {
        let token = SealedToken::from_random_bytes([0xab; 16]);
        assert_eq!(token.as_str().len(), 43);
        assert_eq!(
            token.as_str(),
            "osb_sealed_abababababababababababababababab"
        );
        assert_eq!(token.as_str().parse::<SealedToken>().unwrap(), token);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert!("osb_sealed_ABABABABABABABABABABABABABABABAB"
            .parse::<SealedToken>()
            .is_err());
        assert!("osb_sealed_abab".parse::<SealedToken>().is_err());
        assert!("xsb_sealed_abababababababababababababababab"
            .parse::<SealedToken>()
            .is_err());
    }

    #[test]
    fn debug_does_not_print_the_whole_token() {
        let token = SealedToken::from_random_bytes([0x12; 16]);
        let debug = format!("{token:?}");
        assert!(!debug.contains(token.as_str()));
        assert!(debug.contains("12121212"));
    }
}
