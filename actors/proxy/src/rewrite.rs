//! Request-head rewriting: substitutes tokens in header values (Basic credentials decoded and
//! re-encoded), in the path and query (values percent-encoded), drops hop-by-hop headers, redacts
//! tokens out of paths used in events, and scrubs values out of response headers. Pure functions
//! over `http` types; temporaries holding values are zeroized. Never logs.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use osb_proto::{SealedToken, SEALED_TOKEN_PREFIX};
use zeroize::Zeroizing;

use crate::policy::RequestSubstitution;
use crate::refusal::Refusal;
use crate::replacer::{substitute_all, TokenResolver};
use crate::scrubber::ScrubTable;
use crate::session::Session;

/// Headers that describe one hop and never travel to the upstream as they are.
pub(crate) const HOP_BY_HOP: [&str; 11] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "expect",
    "host",
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

/// Whether an HTTP/1.1 request asks for a protocol upgrade (WebSocket).
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_tokens(headers)
            .iter()
            .any(|token| token == "upgrade")
}

/// Refuses a whole sealed token where the proxy never substitutes one — the method, a header
/// name, the host — so that a token (foreign ones included) is never forwarded as it is
/// (DESIGN §6 rule 1). Names shorter than a token cannot hold one and cost nothing.
pub fn refuse_token_in(bytes: &[u8], what: &str) -> Result<(), Refusal> {
    if bytes.len() < osb_proto::SEALED_TOKEN_LEN {
        return Ok(());
    }
    let holds_token = memchr::memmem::find_iter(bytes, SEALED_TOKEN_PREFIX.as_bytes()).any(|at| {
        bytes
            .get(at..at + osb_proto::SEALED_TOKEN_LEN)
            .is_some_and(|window| SealedToken::from_bytes(window).is_ok())
    });
    if holds_token {
        return Err(Refusal::bad_request(&format!(
            "a sealed token may not appear in the {what}: tokens are replaced only in header values, the path, the query and the body"
        )));
    }
    Ok(())
}

/// Whether an upgrade request (or a `101` answer) is for WebSocket.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// How request headers are rewritten for the upstream beyond substitution.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestHeaderRules {
    /// A WebSocket upgrade: keep `Upgrade`, send `Connection: upgrade`, offer no extension.
    pub keep_upgrade: bool,
    /// Replace the client's `Accept-Encoding` with this (sessions with secrets, ADR 0109).
    pub accept_encoding: Option<&'static str>,
}

/// Copies request headers for the upstream with every token substituted. `Host`, `Content-Length`
/// and hop-by-hop headers are dropped (the caller sets what the upstream leg needs).
pub fn rewrite_request_headers(
    headers: &HeaderMap,
    rules: RequestHeaderRules,
    resolver: &mut RequestSubstitution,
) -> Result<HeaderMap, Refusal> {
    let keep_upgrade = rules.keep_upgrade;
    let listed = connection_tokens(headers);
    let mut out = HeaderMap::with_capacity(headers.len() + 1);
    for (name, value) in headers {
        refuse_token_in(name.as_str().as_bytes(), "name of a header")?;
        let keep_te_trailers =
            name == header::TE && value.as_bytes().eq_ignore_ascii_case(b"trailers");
        let keep_upgrade_header = keep_upgrade && name == header::UPGRADE;
        if (is_hop_by_hop(name) && !keep_te_trailers && !keep_upgrade_header)
            || name == header::CONTENT_LENGTH
            || name == header::SEC_WEBSOCKET_EXTENSIONS
            || (rules.accept_encoding.is_some() && name == header::ACCEPT_ENCODING)
            || (!keep_upgrade_header && listed.iter().any(|token| token == name.as_str()))
        {
            continue;
        }
        out.append(
            name.clone(),
            substitute_header_value(name, value, resolver)?,
        );
    }
    if keep_upgrade {
        out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    if let Some(offered) = rules.accept_encoding {
        out.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(offered));
    }
    Ok(out)
}

/// Substitutes tokens in one header value.
pub fn substitute_header_value(
    name: &HeaderName,
    value: &HeaderValue,
    resolver: &mut RequestSubstitution,
) -> Result<HeaderValue, Refusal> {
    match substitute_value_bytes(name == header::AUTHORIZATION, value.as_bytes(), resolver)? {
        None => Ok(value.clone()),
        Some(replaced) => sensitive_value(replaced),
    }
}

/// Whether a header value is Basic credentials, whose base64 may carry a token.
pub fn is_basic_credentials(value: &[u8]) -> bool {
    value.len() > 6 && value[..6].eq_ignore_ascii_case(b"basic ")
}

/// Substitutes tokens in the bytes of one header value (`Authorization: Basic` credentials are
/// decoded, substituted and re-encoded). `None` when nothing was replaced; a replacement holds
/// secret values and is zeroized when dropped. Callers must check the result with
/// [`check_header_value`] before sending it.
pub fn substitute_value_bytes(
    is_authorization: bool,
    bytes: &[u8],
    resolver: &mut RequestSubstitution,
) -> Result<Option<Zeroizing<Vec<u8>>>, Refusal> {
    if is_authorization && is_basic_credentials(bytes) {
        if let Ok(decoded) = STANDARD.decode(bytes[6..].trim_ascii()) {
            let decoded = Zeroizing::new(decoded);
            if memchr::memmem::find(&decoded, SEALED_TOKEN_PREFIX.as_bytes()).is_some() {
                let replaced = Zeroizing::new(substitute_all(&decoded, resolver)?.into_owned());
                let encoded =
                    Zeroizing::new(format!("Basic {}", STANDARD.encode(replaced.as_slice())));
                return Ok(Some(Zeroizing::new(encoded.as_bytes().to_vec())));
            }
        }
    }
    match substitute_all(bytes, resolver)? {
        Cow::Borrowed(_) => Ok(None),
        Cow::Owned(replaced) => Ok(Some(Zeroizing::new(replaced))),
    }
}

/// Refuses a substituted header value with bytes HTTP does not allow in a header (control
/// characters other than tab, DEL), which a secret value could otherwise smuggle in.
pub fn check_header_value(bytes: &[u8]) -> Result<(), Refusal> {
    if bytes
        .iter()
        .all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
    {
        Ok(())
    } else {
        Err(invalid_value())
    }
}

fn invalid_value() -> Refusal {
    Refusal::bad_request(
        "a secret value contains characters that are not allowed in an http header",
    )
}

/// A substituted value as a header: checked, and backed by a buffer wiped when the request is
/// done (`wiped`), however often it is cloned.
fn sensitive_value(bytes: Zeroizing<Vec<u8>>) -> Result<HeaderValue, Refusal> {
    check_header_value(&bytes)?;
    crate::wiped::wiped_header_value(bytes).ok_or_else(invalid_value)
}

/// Percent-encodes substituted values so they cannot change the structure of a path or query.
struct UrlEncoding<'r> {
    inner: &'r mut RequestSubstitution,
    buffer: Zeroizing<Vec<u8>>,
}

impl TokenResolver for UrlEncoding<'_> {
    fn resolve(&mut self, token: &SealedToken) -> Result<&[u8], Refusal> {
        let value = self.inner.resolve(token)?;
        self.buffer.clear();
        for &byte in value {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                self.buffer.push(byte);
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                self.buffer.extend_from_slice(&[
                    b'%',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 15)],
                ]);
            }
        }
        Ok(&self.buffer)
    }
}

/// Substitutes tokens in a path-and-query string. The result may hold values (percent-encoded)
/// and is wiped when dropped.
pub fn substitute_path_and_query(
    path_and_query: &str,
    resolver: &mut RequestSubstitution,
) -> Result<Zeroizing<String>, Refusal> {
    let mut encoding = UrlEncoding {
        inner: resolver,
        buffer: Zeroizing::new(Vec::new()),
    };
    match substitute_all(path_and_query.as_bytes(), &mut encoding)? {
        Cow::Borrowed(_) => Ok(Zeroizing::new(path_and_query.to_owned())),
        Cow::Owned(replaced) => {
            let replaced = Zeroizing::new(replaced);
            std::str::from_utf8(&replaced)
                .map(|text| Zeroizing::new(text.to_owned()))
                .map_err(|_| Refusal::internal("percent-encoded path is not ascii"))
        }
    }
}

/// Replaces tokens with `{SECRET_NAME}` (or `{unknown_token}`) so paths can go into events.
struct Redacting<'s> {
    session: Option<&'s Session>,
    buffer: Vec<u8>,
}

impl TokenResolver for Redacting<'_> {
    fn resolve(&mut self, token: &SealedToken) -> Result<&[u8], Refusal> {
        let name = self
            .session
            .and_then(|session| session.secret_for_token(token))
            .map(|secret| secret.name.as_str())
            .unwrap_or("unknown_token");
        self.buffer.clear();
        self.buffer
            .extend_from_slice(format!("{{{name}}}").as_bytes());
        Ok(&self.buffer)
    }
}

/// A path safe to put in an event or a log: no query, tokens replaced by secret names.
pub fn redact_path(path: &str, session: Option<&Session>) -> String {
    let mut redacting = Redacting {
        session,
        buffer: Vec::new(),
    };
    match substitute_all(path.as_bytes(), &mut redacting) {
        Ok(redacted) => String::from_utf8_lossy(&redacted).into_owned(),
        Err(_) => "/{redacted}".to_owned(),
    }
}

/// Response headers for the sandbox: hop-by-hop headers dropped (unless an upgrade), values scrubbed.
pub fn scrub_response_headers(
    headers: &mut HeaderMap,
    table: Option<&ScrubTable>,
    keep_upgrade: bool,
) {
    if !keep_upgrade {
        let listed = connection_tokens(headers);
        for name in HOP_BY_HOP
            .iter()
            .copied()
            .chain(listed.iter().map(String::as_str))
        {
            if name != "host" {
                headers.remove(name);
            }
        }
    }
    if let Some(table) = table {
        scrub_header_values(headers, table);
    }
}

/// Replaces echoed values (and their encodings) in every header value. A header whose name
/// carries a value, or whose value would not be valid once scrubbed, is dropped rather than
/// passed on.
pub fn scrub_header_values(headers: &mut HeaderMap, table: &ScrubTable) {
    let mut invalid: Vec<HeaderName> = headers
        .keys()
        .filter(|name| table.name_carries_value(name.as_str().as_bytes()))
        .cloned()
        .collect();
    for (name, value) in headers.iter_mut() {
        if let Some(scrubbed) = table.scrub_all(value.as_bytes()) {
            match HeaderValue::from_bytes(&scrubbed) {
                Ok(replacement) => *value = replacement,
                Err(_) => invalid.push(name.clone()),
            }
        }
    }
    for name in invalid {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests;
