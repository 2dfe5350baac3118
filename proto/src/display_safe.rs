//! Making sandbox-chosen text safe to put in a log line or an event: a DNS name, an SNI or a
//! `Host` header comes from code we do not trust, so it may carry control characters (to forge
//! log lines or terminal escapes), invalid UTF-8, sealed tokens (capabilities that events must
//! never carry), or simply be huge. [`display_safe`] turns such text into a bounded, printable
//! string that keeps ordinary hosts exactly as they are. It must never return a sealed token.

use crate::sealed_token::{SealedToken, SEALED_TOKEN_LEN, SEALED_TOKEN_PREFIX};

/// What a sealed token is replaced with when the caller cannot name its secret.
pub const SEALED_PLACEHOLDER: &str = "[sealed]";

/// The longest output, in characters, before `…` is appended (a DNS name is at most 253).
pub const DISPLAY_SAFE_MAX_CHARS: usize = 253;

/// Returns `text` with every sealed token replaced by `[sealed]`, every byte outside printable
/// ASCII written as `\xNN`, and the result cut to at most [`DISPLAY_SAFE_MAX_CHARS`] (then `…`).
/// Printable ASCII without tokens — every valid host name — comes back unchanged.
pub fn display_safe(text: &[u8]) -> String {
    display_safe_with(text, |_| None)
}

/// Like [`display_safe`], but asks `name_of` for the secret name of each well-formed token
/// (a session that knows its tokens can say `[sealed:OPENAI_API_KEY]`); `None` gives
/// `[sealed]`. Anything that starts like a token but is not one is also replaced, so a
/// truncated or mangled token never reaches the output either.
pub fn display_safe_with(text: &[u8], name_of: impl Fn(&SealedToken) -> Option<String>) -> String {
    let prefix = SEALED_TOKEN_PREFIX.as_bytes();
    let mut out = String::with_capacity(text.len().min(DISPLAY_SAFE_MAX_CHARS) + 4);
    let mut at = 0;
    let mut written = 0;
    while at < text.len() {
        let rest = &text[at..];
        let (piece, consumed) =
            if rest.len() >= prefix.len() && rest[..prefix.len()].eq_ignore_ascii_case(prefix) {
                let end = SEALED_TOKEN_LEN.min(rest.len());
                let piece = match SealedToken::from_bytes(&rest[..end]) {
                    Ok(token) => match name_of(&token) {
                        Some(name) => format!("[sealed:{}]", display_safe(name.as_bytes())),
                        None => SEALED_PLACEHOLDER.to_owned(),
                    },
                    Err(_) => SEALED_PLACEHOLDER.to_owned(),
                };
                // Skip the token and any alphanumeric tail, so half a token never follows it.
                let tail = rest[end..]
                    .iter()
                    .take_while(|byte| byte.is_ascii_alphanumeric())
                    .count();
                (piece, end + tail)
            } else if (0x20..0x7f).contains(&rest[0]) && rest[0] != b'\\' {
                (char::from(rest[0]).to_string(), 1)
            } else {
                (format!("\\x{:02x}", rest[0]), 1)
            };
        let width = piece.chars().count();
        if written + width > DISPLAY_SAFE_MAX_CHARS {
            out.push('…');
            break;
        }
        out.push_str(&piece);
        written += width;
        at += consumed;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "osb_sealed_0123456789abcdef0123456789abcdef";

    #[test]
    fn ordinary_hosts_are_unchanged() {
        for host in [
            "api.example.com",
            "*.pypi.org:443",
            "xn--bcher-kva.example",
            "10.0.0.1",
        ] {
            assert_eq!(display_safe(host.as_bytes()), host);
        }
    }

    #[test]
    fn tokens_are_replaced_whole_and_never_leak_in_part() {
        let text = format!("{TOKEN}.evil.example");
        assert_eq!(display_safe(text.as_bytes()), "[sealed].evil.example");
        let upper = TOKEN.to_ascii_uppercase();
        assert_eq!(display_safe(upper.as_bytes()), "[sealed]");
        let truncated = &TOKEN[..30];
        assert_eq!(display_safe(truncated.as_bytes()), "[sealed]");
        let glued = format!("a{TOKEN}ffff.b");
        assert_eq!(display_safe(glued.as_bytes()), "a[sealed].b");
        let named = display_safe_with(TOKEN.as_bytes(), |_| Some("OPENAI_API_KEY".to_owned()));
        assert_eq!(named, "[sealed:OPENAI_API_KEY]");
    }

    #[test]
    fn control_characters_and_non_ascii_are_escaped() {
        assert_eq!(
            display_safe(b"evil\r\n2026 INFO forged\x1b[31m"),
            "evil\\x0d\\x0a2026 INFO forged\\x1b[31m"
        );
        assert_eq!(display_safe(b"a\\b"), "a\\x5cb");
        assert_eq!(display_safe("é".as_bytes()), "\\xc3\\xa9");
    }

    #[test]
    fn output_is_bounded() {
        let long = vec![b'a'; 10_000];
        let shown = display_safe(&long);
        assert_eq!(shown.chars().count(), DISPLAY_SAFE_MAX_CHARS + 1);
        assert!(shown.ends_with('…'));
        let escaped = vec![0u8; 10_000];
        assert!(display_safe(&escaped).chars().count() <= DISPLAY_SAFE_MAX_CHARS + 1);
    }

    proptest::proptest! {
        #[test]
        fn never_returns_a_token_or_a_control_character(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400), split in 0usize..400) {
            let mut input = bytes.clone();
            let at = split.min(input.len());
            input.splice(at..at, TOKEN.bytes());
            let shown = display_safe(&input);
            proptest::prop_assert!(!shown.to_ascii_lowercase().contains(SEALED_TOKEN_PREFIX));
            proptest::prop_assert!(shown.chars().all(|c| c == '…' || (' '..='~').contains(&c)));
            proptest::prop_assert!(shown.chars().count() <= DISPLAY_SAFE_MAX_CHARS + 1);
        }
    }
}
