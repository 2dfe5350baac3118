//! The forms in which an upstream may echo a secret value, each with what replaces it: the value
//! itself, its base64 (standard and URL-safe alphabets, at each of the three byte alignments a
//! value can have inside a longer encoded string — which also covers the `Basic` credentials
//! the proxy encodes), its JSON string escapes and its percent-encodings. A base64 form lists
//! only the characters made of the value's bits alone; the characters on either side that mix
//! the value's first or last bits with a neighbour's are marked so the scrubber replaces them
//! too, and no bit of the value passes. Forms shorter than [`MIN_ENCODED_FORM`] are left out
//! (they would scrub unrelated text). This module only builds patterns; it must never log them.

use base64::alphabet::Alphabet;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use zeroize::Zeroizing;

/// Shortest encoded form (in bytes) worth scrubbing; the raw value is always scrubbed.
pub const MIN_ENCODED_FORM: usize = 8;

/// Which base64 alphabet a form uses (to recognise the mixed neighbour characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64Alphabet {
    Standard,
    UrlSafe,
}

impl Base64Alphabet {
    /// Whether `byte` is a character of this alphabet.
    pub fn contains(self, byte: u8) -> bool {
        byte.is_ascii_alphanumeric()
            || match self {
                Base64Alphabet::Standard => byte == b'+' || byte == b'/',
                Base64Alphabet::UrlSafe => byte == b'-' || byte == b'_',
            }
    }

    fn engine(self) -> GeneralPurpose {
        match self {
            Base64Alphabet::Standard => STANDARD_NO_PAD,
            Base64Alphabet::UrlSafe => URL_SAFE_NO_PAD,
        }
    }
}

/// One form of one value: the bytes to find and the bytes that replace them.
pub struct Form {
    /// What an upstream would send (holds secret material: zeroized on drop).
    pub needle: Zeroizing<Vec<u8>>,
    /// What the sandbox gets instead (derived from the token only).
    pub replacement: Vec<u8>,
    /// The base64 characters just before / after the needle carry bits of the value too.
    pub mixed_left: bool,
    pub mixed_right: bool,
    pub alphabet: Option<Base64Alphabet>,
}

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Form({} bytes)", self.needle.len())
    }
}

/// Every form of `value`, replaced by the matching form of `token`; duplicates removed.
pub fn forms_of(value: &[u8], token: &[u8]) -> Vec<Form> {
    let mut forms = vec![plain(value.to_vec(), token)];
    for alphabet in [Base64Alphabet::Standard, Base64Alphabet::UrlSafe] {
        for offset in 0..3 {
            forms.extend(base64_form(value, token, alphabet, offset));
        }
    }
    for escaped in json_forms(value) {
        forms.push(plain(escaped, token));
    }
    for encoded in percent_forms(value) {
        forms.push(plain(encoded, token));
    }
    let mut unique: Vec<Form> = Vec::with_capacity(forms.len());
    for form in forms {
        let is_raw = unique.is_empty();
        let too_short = !is_raw && form.needle.len() < MIN_ENCODED_FORM;
        if too_short || unique.iter().any(|known| known.needle == form.needle) {
            continue;
        }
        unique.push(form);
    }
    unique
}

fn plain(needle: Vec<u8>, token: &[u8]) -> Form {
    Form {
        needle: Zeroizing::new(needle),
        replacement: token.to_vec(),
        mixed_left: false,
        mixed_right: false,
        alphabet: None,
    }
}

/// The characters of base64(`offset` unknown bytes ‖ value ‖ …) that depend on the value alone.
fn base64_form(
    value: &[u8],
    token: &[u8],
    alphabet: Base64Alphabet,
    offset: usize,
) -> Option<Form> {
    let engine = alphabet.engine();
    let mut padded = Zeroizing::new(vec![0u8; offset]);
    padded.extend_from_slice(value);
    padded.extend_from_slice(&[0, 0]);
    let encoded = Zeroizing::new(engine.encode(padded.as_slice()));
    let value_bits = (8 * offset, 8 * (offset + value.len()));
    let first = value_bits.0.div_ceil(6);
    let end = value_bits.1 / 6;
    if end <= first {
        return None;
    }
    let needle = Zeroizing::new(encoded.as_bytes()[first..end].to_vec());
    Some(Form {
        needle,
        replacement: engine.encode(token).into_bytes(),
        mixed_left: value_bits.0 % 6 != 0,
        mixed_right: value_bits.1 % 6 != 0,
        alphabet: Some(alphabet),
    })
}

/// JSON string escapes: the minimal one (`"`, `\`, control characters), with `\/` too, and the
/// ASCII-only one (`\uXXXX` for everything else, as Python's `json.dumps` writes by default).
fn json_forms(value: &[u8]) -> Vec<Vec<u8>> {
    let minimal = json_escape(value, false, false);
    let mut forms = vec![json_escape(value, true, false)];
    if let Some(ascii) = std::str::from_utf8(value)
        .ok()
        .filter(|text| !text.is_ascii())
        .map(|_| json_escape(value, false, true))
    {
        forms.push(ascii);
    }
    forms.push(minimal);
    forms
}

fn json_escape(value: &[u8], slash: bool, ascii_only: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    let push_unit = |out: &mut Vec<u8>, unit: u16| {
        out.extend_from_slice(format!("\\u{unit:04x}").as_bytes());
    };
    let text = if ascii_only {
        std::str::from_utf8(value).ok()
    } else {
        None
    };
    if let Some(text) = text {
        for character in text.chars() {
            if character.is_ascii() {
                escape_byte(&mut out, character as u8, slash);
            } else {
                let mut units = [0u16; 2];
                for unit in character.encode_utf16(&mut units) {
                    push_unit(&mut out, *unit);
                }
            }
        }
        return out;
    }
    for &byte in value {
        escape_byte(&mut out, byte, slash);
    }
    out
}

fn escape_byte(out: &mut Vec<u8>, byte: u8, slash: bool) {
    match byte {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'/' if slash => out.extend_from_slice(b"\\/"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        0..0x20 => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
        _ => out.push(byte),
    }
}

/// Percent-encodings: RFC 3986 unreserved characters kept, everything else `%XX` in upper and
/// lower case hex, and the form encoding (`+` for a space).
fn percent_forms(value: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = Vec::new();
    for hex in [b"0123456789ABCDEF", b"0123456789abcdef"] {
        for form_encoding in [false, true] {
            let mut out = Vec::with_capacity(value.len() * 3);
            for &byte in value {
                if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                    out.push(byte);
                } else if form_encoding && byte == b' ' {
                    out.push(b'+');
                } else {
                    out.extend_from_slice(&[
                        b'%',
                        hex[usize::from(byte >> 4)],
                        hex[usize::from(byte & 15)],
                    ]);
                }
            }
            forms.push(out);
        }
    }
    forms
}

/// The engine the scrubber's tests decode with (padding optional, both alphabets).
pub fn decoder(alphabet: Base64Alphabet) -> GeneralPurpose {
    let alphabet: &Alphabet = match alphabet {
        Base64Alphabet::Standard => &base64::alphabet::STANDARD,
        Base64Alphabet::UrlSafe => &base64::alphabet::URL_SAFE,
    };
    GeneralPurpose::new(
        alphabet,
        NO_PAD.with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    )
}
