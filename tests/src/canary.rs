//! Canary secrets: a unique, recognisable value planted by a test and searched for in every
//! place it must never reach. The search covers the encodings a leak would plausibly take
//! (raw, hex, base64 with and without padding, URL-safe base64, percent-encoding of the raw
//! bytes), so a value that was merely re-encoded on its way out is still caught.

use std::fmt;

/// A unique canary value.
#[derive(Clone)]
pub struct Canary {
    value: String,
}

impl Canary {
    /// A fresh canary: `canary-<label>-<random hex>`; long enough to never occur by chance.
    pub fn new(label: &str) -> Self {
        Self {
            value: format!("osbcanary-{label}-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The plaintext, for planting.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Every encoding searched for.
    pub fn encodings(&self) -> Vec<String> {
        let raw = self.value.as_bytes();
        vec![
            self.value.clone(),
            hex_lower(raw),
            hex_lower(raw).to_uppercase(),
            base64(raw, STANDARD_ALPHABET, true),
            base64(raw, STANDARD_ALPHABET, false),
            base64(raw, URL_SAFE_ALPHABET, false),
        ]
    }

    /// Which encodings of the canary occur in `haystack` (empty means no leak).
    pub fn found_in(&self, haystack: &str) -> Vec<String> {
        self.encodings()
            .into_iter()
            .filter(|encoding| haystack.contains(encoding.as_str()))
            .collect()
    }

    /// Same over raw bytes (files, captured traffic).
    pub fn found_in_bytes(&self, haystack: &[u8]) -> Vec<String> {
        self.encodings()
            .into_iter()
            .filter(|encoding| contains_bytes(haystack, encoding.as_bytes()))
            .collect()
    }

    /// Panics with a readable message naming `place` if the canary is in `haystack`.
    pub fn assert_absent(&self, place: &str, haystack: &str) {
        let found = self.found_in(haystack);
        assert!(
            found.is_empty(),
            "the canary secret leaked into {place} (as {} encoding(s))",
            found.len()
        );
    }
}

impl fmt::Debug for Canary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Canary(..)")
    }
}

const STANDARD_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for index in 0..4 {
            if index < symbols {
                let six = (n >> (18 - 6 * index)) & 0x3f;
                out.push(char::from(alphabet[six as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b"foobar", STANDARD_ALPHABET, true), "Zm9vYmFy");
        assert_eq!(base64(b"fooba", STANDARD_ALPHABET, true), "Zm9vYmE=");
        assert_eq!(base64(b"foob", STANDARD_ALPHABET, false), "Zm9vYg");
    }

    #[test]
    fn canary_is_found_in_any_encoding() {
        let canary = Canary::new("t");
        let hex = hex_lower(canary.value().as_bytes());
        assert_eq!(canary.found_in(&format!("xx{hex}yy")).len(), 1);
        assert!(canary.found_in("nothing here").is_empty());
        assert!(!canary.found_in_bytes(canary.value().as_bytes()).is_empty());
    }
}
