//! The response side of the express lane: parses an upstream response head, decides how its
//! body is framed (RFC 9112 §6.3: no body, `Content-Length`, chunked, or until close), and
//! writes the head the sandbox sees — hop-by-hop headers dropped, echoed secret values scrubbed
//! back into tokens, framing headers set by the lane. A response it cannot frame without
//! guessing (conflicting lengths, an unexpected `101`) is an upstream failure, never forwarded.

use std::mem::MaybeUninit;
use std::ops::Range;

use super::{parse_length, range_of};
use crate::scrubber::ScrubTable;

const MAX_HEADERS: usize = 128;
/// Longest upstream response head accepted.
pub const MAX_HEAD: usize = 64 * 1024;

/// How the upstream's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 204, 304).
    Bodiless,
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// A final (non-1xx) response head. Ranges index the upstream read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub head_len: usize,
    pub status: u16,
    /// Headers that travel to the sandbox (name, value), framing headers excluded.
    pub forwarded: Vec<(Range<usize>, Range<usize>)>,
    /// The upstream's `Content-Length` of a bodiless response (kept for HEAD and 304).
    pub bodiless_length: Option<Range<usize>>,
    pub framing: Framing,
    /// The upstream connection cannot carry another request afterwards.
    pub close: bool,
}

/// What the bytes read so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Partial,
    /// A 1xx interim response of this many bytes, to be skipped.
    Interim(usize),
    Final(ResponseHead),
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty())
}

/// Whether a response header is one the lane never forwards: a hop-by-hop header (`Host` aside,
/// which a response does not carry) or `Content-Length` (the lane sets the framing). Compared by
/// length first: this runs for every header of every response.
fn is_framed_by_the_lane(name: &[u8]) -> bool {
    let candidates: &[&str] = match name.len() {
        2 => &["te"],
        6 => &["expect"],
        7 => &["trailer", "upgrade"],
        10 => &["connection", "keep-alive"],
        14 => &["content-length"],
        16 => &["proxy-connection"],
        17 => &["transfer-encoding"],
        18 => &["proxy-authenticate"],
        19 => &["proxy-authorization"],
        _ => return false,
    };
    candidates
        .iter()
        .any(|candidate| name.eq_ignore_ascii_case(candidate.as_bytes()))
}

/// Parses the response head at the start of `buffer`. `Err` says why it cannot be forwarded.
pub fn parse(buffer: &[u8], request_was_head: bool) -> Result<Parsed, String> {
    // Uninitialised slots: zeroing the header array per response showed in the profile.
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buffer,
        &mut headers,
    );
    let head_len = match parsed {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buffer.len() < MAX_HEAD => return Ok(Parsed::Partial),
        Ok(httparse::Status::Partial) => return Err("response head too large".into()),
        Err(error) => return Err(format!("malformed response head: {error}")),
    };
    let status = response.code.unwrap_or(0);
    if status == 101 {
        return Err("unexpected 101 switching protocols".into());
    }
    if (100..200).contains(&status) {
        return Ok(Parsed::Interim(head_len));
    }
    let mut close = response.version != Some(1);
    let mut chunked = None;
    let mut length: Option<u64> = None;
    let mut length_range = None;
    let mut listed: Vec<&[u8]> = Vec::new();
    for header in response.headers.iter() {
        let name = header.name;
        let value = header.value.trim_ascii();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only `chunked` is relayed: any other transfer coding (gzip, …) would reach the
            // sandbox still coded, past the scrubber, with the header that says so dropped.
            if tokens(value).any(|t| !t.eq_ignore_ascii_case(b"chunked")) {
                // The upstream's text is not quoted: it could carry a value.
                return Err("a transfer-coding other than chunked is not supported".into());
            }
            chunked = Some(tokens(value).last().is_some());
        } else if name.eq_ignore_ascii_case("content-length") {
            let parsed = parse_length(value).ok_or("invalid content-length")?;
            if length.is_some_and(|known| known != parsed) {
                return Err("conflicting content-length headers".into());
            }
            length = Some(parsed);
            length_range = Some(range_of(buffer, value));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in tokens(value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                }
                listed.push(token);
            }
        }
    }
    let framing = if request_was_head || status == 204 || status == 304 {
        Framing::Bodiless
    } else if let Some(chunked) = chunked {
        // Transfer-Encoding wins over Content-Length; such a connection is not reused.
        close |= length.is_some() || !chunked;
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(length) = length {
        Framing::Length(length)
    } else {
        close = true;
        Framing::UntilClose
    };
    let forwarded = response
        .headers
        .iter()
        .filter(|header| {
            let name = header.name.as_bytes();
            !(is_framed_by_the_lane(name)
                || listed.iter().any(|token| name.eq_ignore_ascii_case(token)))
        })
        .map(|header| {
            (
                range_of(buffer, header.name.as_bytes()),
                range_of(buffer, header.value.trim_ascii()),
            )
        })
        .collect();
    Ok(Parsed::Final(ResponseHead {
        head_len,
        status,
        forwarded,
        bodiless_length: (framing == Framing::Bodiless)
            .then_some(length_range)
            .flatten(),
        framing,
        close,
    }))
}

/// Appends `value` in decimal (no `format!`: this runs for every response).
pub fn push_decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// How the sandbox's copy of the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFraming {
    /// No body follows; the upstream's own `Content-Length` (if any) is kept.
    Bodiless,
    Length(usize),
    Chunked,
}

/// Writes the head the sandbox sees.
pub fn client_head(
    upstream: &[u8],
    head: &ResponseHead,
    table: Option<&ScrubTable>,
    framing: ClientFraming,
    close: bool,
    out: &mut Vec<u8>,
) {
    write_client_head(upstream, head, table, framing, close, false, out);
}

/// The content coding of the response (ADR 0109), or why it cannot be scrubbed.
pub fn coding(upstream: &[u8], head: &ResponseHead) -> Result<crate::encoding::Coding, String> {
    let values = head
        .forwarded
        .iter()
        .filter(|(name, _)| upstream[name.clone()].eq_ignore_ascii_case(b"content-encoding"))
        .map(|(_, value)| &upstream[value.clone()]);
    crate::encoding::coding_of(values)
}

/// Writes the head the sandbox sees; `decoded`: the body is handed out decoded, so the upstream's
/// `Content-Encoding` is left out.
pub fn write_client_head(
    upstream: &[u8],
    head: &ResponseHead,
    table: Option<&ScrubTable>,
    framing: ClientFraming,
    close: bool,
    decoded: bool,
    out: &mut Vec<u8>,
) {
    let reason = http::StatusCode::from_u16(head.status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("");
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(head.status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    // One pass over the whole head instead of one per value: a head in which no form of a value
    // appears has no value to scrub (names are still compared without case, below).
    let value_table = table.filter(|table| table.appears_in(&upstream[..head.head_len]));
    for (name, value) in &head.forwarded {
        if decoded && upstream[name.clone()].eq_ignore_ascii_case(b"content-encoding") {
            continue;
        }
        if table.is_some_and(|table| table.name_carries_value(&upstream[name.clone()])) {
            continue;
        }
        out.extend_from_slice(&upstream[name.clone()]);
        out.extend_from_slice(b": ");
        let value = &upstream[value.clone()];
        match value_table.and_then(|table| table.scrub_all(value)) {
            Some(scrubbed) => out.extend_from_slice(&scrubbed),
            None => out.extend_from_slice(value),
        }
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        ClientFraming::Bodiless => {
            if let Some(length) = &head.bodiless_length {
                out.extend_from_slice(b"content-length: ");
                out.extend_from_slice(&upstream[length.clone()]);
                out.extend_from_slice(b"\r\n");
            }
        }
        ClientFraming::Length(length) => {
            out.extend_from_slice(b"content-length: ");
            push_decimal(out, length as u64);
            out.extend_from_slice(b"\r\n");
        }
        ClientFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
