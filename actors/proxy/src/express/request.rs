//! The request side of the express lane: parses a request head with `httparse`, decides whether
//! the request is simple enough for the lane (HTTP/1.1, origin-form, no `Transfer-Encoding`,
//! `Expect`, `Upgrade`, `TE` or `Trailer`, at most one `Host` and one valid `Content-Length` that
//! fits the body buffer, `Connection` naming only `keep-alive`/`close`), and writes the upstream
//! request with every token substituted through the same policy resolver as the hyper path.
//! Anything it does not fully understand goes back to hyper untouched: it must never guess.

use std::mem::MaybeUninit;
use std::ops::Range;

use zeroize::Zeroizing;

use super::{parse_length, range_of};
use crate::policy::RequestSubstitution;
use crate::refusal::Refusal;
use crate::replacer::substitute_all;
use crate::rewrite::{
    check_header_value, is_basic_credentials, refuse_token_in, substitute_path_and_query,
    substitute_value_bytes,
};

/// Longest request head the lane reads before leaving the connection to hyper.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most headers the lane parses before leaving the connection to hyper.
const MAX_HEADERS: usize = 64;

/// Headers whose presence leaves the request to hyper (framing, upgrades, expectations).
const LEFT_TO_HYPER: [&str; 5] = ["transfer-encoding", "expect", "upgrade", "te", "trailer"];
/// Hop-by-hop headers that are simply not forwarded.
const DROPPED: [&str; 4] = [
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
];

/// A request head the lane will serve. Ranges index the connection's read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Length of the head including the blank line.
    pub head_len: usize,
    pub method: Range<usize>,
    pub path: Range<usize>,
    /// The `Host` header's value.
    pub host: Option<Range<usize>>,
    /// Headers that travel upstream (name, value), in order.
    pub forwarded: Vec<(Range<usize>, Range<usize>)>,
    /// The announced body length; `None` means no body.
    pub content_length: Option<usize>,
    /// The body is larger than the whole-body threshold and streams upstream as it arrives
    /// (re-framed as chunks); it is not part of [`RequestHead::total_len`].
    pub streamed: bool,
    /// The client asked to close the connection after this exchange.
    pub close: bool,
}

impl RequestHead {
    /// Head plus body.
    pub fn total_len(&self) -> usize {
        if self.streamed {
            return self.head_len;
        }
        self.head_len + self.content_length.unwrap_or(0)
    }
}

/// What the bytes read so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A request the lane serves.
    Express(RequestHead),
    /// Something the lane leaves to hyper (which also answers malformed requests).
    Hyper,
}

/// The comma-separated tokens of a `Connection` value, if it names only `keep-alive`/`close`:
/// `Some(close)`.
fn connection_close(value: &[u8]) -> Option<bool> {
    let mut close = false;
    for token in value.split(|&b| b == b',') {
        let token = token.trim_ascii();
        if token.eq_ignore_ascii_case(b"close") {
            close = true;
        } else if !(token.is_empty() || token.eq_ignore_ascii_case(b"keep-alive")) {
            return None;
        }
    }
    Some(close)
}

/// Parses the head at the start of `buffer` and classifies the request; a body longer than
/// `max_body` leaves the request to hyper.
pub fn parse(buffer: &[u8], max_body: usize) -> Parsed {
    parse_with(buffer, max_body, false)
}

/// [`parse`], where `stream_larger` keeps a `Content-Length` body longer than `max_body` on the
/// lane, marked [`RequestHead::streamed`].
pub fn parse_with(buffer: &[u8], max_body: usize, stream_larger: bool) -> Parsed {
    // Uninitialised slots: zeroing 64 headers per request showed in the profile.
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let head_len = match request.parse_with_uninit_headers(buffer, &mut headers) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buffer.len() < MAX_HEAD => return Parsed::Partial,
        _ => return Parsed::Hyper,
    };
    let (Some(method), Some(path), Some(1)) = (request.method, request.path, request.version)
    else {
        return Parsed::Hyper;
    };
    if method == "CONNECT" || !path.starts_with('/') {
        return Parsed::Hyper;
    }
    let mut head = RequestHead {
        head_len,
        method: range_of(buffer, method.as_bytes()),
        path: range_of(buffer, path.as_bytes()),
        host: None,
        forwarded: Vec::with_capacity(request.headers.len()),
        content_length: None,
        streamed: false,
        close: false,
    };
    for header in request.headers.iter() {
        let name = header.name;
        let value = header.value.trim_ascii();
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if is("host") {
            if head.host.is_some() {
                return Parsed::Hyper;
            }
            head.host = Some(range_of(buffer, value));
        } else if is("content-length") {
            let length = parse_length(value).and_then(|l| usize::try_from(l).ok());
            match length {
                Some(length)
                    if head.content_length.is_none() && (length <= max_body || stream_larger) =>
                {
                    head.content_length = Some(length);
                    head.streamed = length > max_body;
                }
                _ => return Parsed::Hyper,
            }
        } else if is("connection") {
            match connection_close(value) {
                Some(close) => head.close |= close,
                None => return Parsed::Hyper,
            }
        } else if LEFT_TO_HYPER.iter().any(|known| is(known)) {
            return Parsed::Hyper;
        } else if !DROPPED.iter().any(|known| is(known)) {
            head.forwarded
                .push((range_of(buffer, name.as_bytes()), range_of(buffer, value)));
        }
    }
    Parsed::Express(head)
}

/// Writes the upstream request for `head` (whose body is `buffer[head_len..total_len]`, or only
/// announced as chunked when it is streamed), with tokens substituted in the path and query,
/// header values and body. The result holds secret
/// values and is zeroized when dropped.
pub fn upstream_request(
    buffer: &[u8],
    head: &RequestHead,
    authority: &str,
    resolver: &mut RequestSubstitution,
) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    upstream_request_offering(buffer, head, authority, None, resolver)
}

/// Where a token prefix starts in a request head, found in one pass over the whole head: a part
/// of the head with no start in it holds no token (a token is found by its prefix), so it is
/// copied as it is instead of being searched again. Only Basic credentials, where a token hides
/// in base64, are always decoded and searched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenSites {
    starts: [usize; Self::KEPT],
    count: usize,
    /// More starts than kept, or not scanned: every part is searched.
    everywhere: bool,
}

impl TokenSites {
    const KEPT: usize = 8;

    /// The starts of the token prefix in `head`.
    pub(crate) fn scan(head: &[u8]) -> Self {
        let mut sites = Self {
            starts: [0; Self::KEPT],
            count: 0,
            everywhere: false,
        };
        for start in crate::replacer::prefix_starts(head) {
            if sites.count == Self::KEPT {
                sites.everywhere = true;
                break;
            }
            sites.starts[sites.count] = start;
            sites.count += 1;
        }
        sites
    }

    /// Every part may hold a token (the reference behaviour, for tests).
    #[cfg(test)]
    pub(crate) fn everywhere() -> Self {
        Self {
            starts: [0; Self::KEPT],
            count: 0,
            everywhere: true,
        }
    }

    /// Whether a prefix starts inside `range` (so a token may lie in it).
    fn any_in(&self, range: &Range<usize>) -> bool {
        self.everywhere
            || self.starts[..self.count]
                .iter()
                .any(|start| range.contains(start))
    }
}

/// [`upstream_request`] with the client's `Accept-Encoding` replaced by `accept_encoding` (the
/// codings the scrubber can decode, for sessions with secrets — ADR 0109). A request with a
/// `Range` header is offered `identity` only.
pub fn upstream_request_offering(
    buffer: &[u8],
    head: &RequestHead,
    authority: &str,
    accept_encoding: Option<&str>,
    resolver: &mut RequestSubstitution,
) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    let sites = TokenSites::scan(&buffer[..head.head_len]);
    upstream_request_with(buffer, head, authority, accept_encoding, resolver, sites)
}

/// [`upstream_request_offering`] with the token sites of the head already known.
pub(crate) fn upstream_request_with(
    buffer: &[u8],
    head: &RequestHead,
    authority: &str,
    accept_encoding: Option<&str>,
    resolver: &mut RequestSubstitution,
    sites: TokenSites,
) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    let path = std::str::from_utf8(&buffer[head.path.clone()])
        .map_err(|_| Refusal::bad_request("the request target is not valid"))?;
    if sites.any_in(&head.method) {
        refuse_token_in(&buffer[head.method.clone()], "method")?;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(head.total_len() + 256));
    out.extend_from_slice(&buffer[head.method.clone()]);
    out.push(b' ');
    if sites.any_in(&head.path) {
        out.extend_from_slice(substitute_path_and_query(path, resolver)?.as_bytes());
    } else {
        out.extend_from_slice(path.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(offered) = accept_encoding {
        let has_range = head
            .forwarded
            .iter()
            .any(|(name, _)| buffer[name.clone()].eq_ignore_ascii_case(b"range"));
        let offered = if has_range {
            crate::encoding::OFFERED_FOR_RANGES
        } else {
            offered
        };
        out.extend_from_slice(b"accept-encoding: ");
        out.extend_from_slice(offered.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name_range, value_range) in &head.forwarded {
        let name = &buffer[name_range.clone()];
        let value = &buffer[value_range.clone()];
        if sites.any_in(name_range) {
            refuse_token_in(name, "name of a header")?;
        }
        if accept_encoding.is_some() && name.eq_ignore_ascii_case(b"accept-encoding") {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        let is_authorization = name.eq_ignore_ascii_case(b"authorization");
        // Basic credentials hide a token in base64, where the scan cannot see it.
        let may_hold_token =
            sites.any_in(value_range) || (is_authorization && is_basic_credentials(value));
        if !may_hold_token {
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
            continue;
        }
        match substitute_value_bytes(is_authorization, value, resolver)? {
            None => out.extend_from_slice(value),
            Some(replaced) => {
                check_header_value(&replaced)?;
                out.extend_from_slice(&replaced);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    if head.streamed {
        // The body follows as it arrives; substitution may change its length.
        out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    } else if head.content_length.is_some() {
        let body = substitute_all(&buffer[head.head_len..head.total_len()], resolver)?;
        out.extend_from_slice(b"content-length: ");
        super::response::push_decimal(&mut out, body.len() as u64);
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&body);
        if let std::borrow::Cow::Owned(replaced) = body {
            drop(Zeroizing::new(replaced));
        }
    } else {
        out.extend_from_slice(b"\r\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
