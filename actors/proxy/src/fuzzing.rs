//! The properties the fuzz targets check (`actors/proxy/fuzz`, issue 11 item 10), kept in the
//! crate so each target has a proptest twin in the normal suite that runs the very same oracle
//! (see the tests at the bottom): streaming replacer and scrubber against their whole-buffer
//! references, the express lane's request and response head parsers, the chunked decoder, the
//! authority and host-pattern parsers, WebSocket frame heads and the content decoder. Every
//! function takes arbitrary bytes and panics only when a property is broken. Not part of the
//! proxy's API; it must never be called on the data path.

#![doc(hidden)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use osb_proto::{HostPattern, SandboxId, SealedToken};

use crate::express::chunked::ChunkedDecoder;
use crate::express::{request, response};
use crate::policy::{split_authority, RequestSubstitution, Scheme, SealingPolicy, Target};
use crate::refusal::Refusal;
use crate::replacer::{substitute_all, StreamReplacer, TokenResolver};
use crate::scrubber::{ScrubTable, StreamScrubber};
use crate::secret_value::SecretValue;
use crate::session::{SealedSecret, Session};

/// Cut points taken from the first bytes of the input, then the rest.
fn split_input(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let count = usize::from(data.first().copied().unwrap_or(0) % 8);
    let cuts = data
        .iter()
        .skip(1)
        .take(count)
        .map(|b| usize::from(*b))
        .collect();
    (cuts, data.get(1 + count..).unwrap_or(&[]))
}

/// `input` cut at `cuts` (taken modulo the length, sorted).
fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|cut| {
            if input.is_empty() {
                0
            } else {
                cut * 7 % (input.len() + 1)
            }
        })
        .collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for point in points {
        out.push(&input[last..point]);
        last = point;
    }
    out.push(&input[last..]);
    out
}

fn token(byte: u8) -> SealedToken {
    SealedToken::from_random_bytes([byte; 16])
}

struct MapResolver(HashMap<SealedToken, Vec<u8>>);

impl TokenResolver for MapResolver {
    fn resolve(&mut self, token: &SealedToken) -> Result<&[u8], Refusal> {
        self.0
            .get(token)
            .map(Vec::as_slice)
            .ok_or_else(|| Refusal::unknown_token("fuzz"))
    }
}

fn resolver() -> MapResolver {
    MapResolver(HashMap::from([
        (token(0x11), b"VALUE-ONE".to_vec()),
        (
            token(0x22),
            b"a-much-longer-second-value-0123456789".to_vec(),
        ),
    ]))
}

/// The streaming replacer equals `substitute_all` on the whole input, whatever the cuts (the
/// input gets known tokens spliced in so they are actually exercised).
pub fn replacer_differential(data: &[u8]) {
    let (cuts, rest) = split_input(data);
    let mut input = rest.to_vec();
    if let Some(&at) = rest.first() {
        let at = usize::from(at) % (input.len() + 1);
        let known = token(if at % 2 == 0 { 0x11 } else { 0x22 });
        input.splice(at..at, known.as_bytes().iter().copied());
    }
    let expected = substitute_all(&input, &mut resolver()).map(|out| out.into_owned());
    let mut streaming = StreamReplacer::new();
    let mut resolver = resolver();
    let mut out = Vec::new();
    let mut failed = None;
    for piece in pieces(&input, &cuts) {
        match streaming.feed(Bytes::copy_from_slice(piece), &mut resolver) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(refusal) => {
                failed = Some(refusal);
                break;
            }
        }
    }
    match (expected, failed) {
        (Ok(expected), None) => {
            out.extend_from_slice(&streaming.finish());
            assert_eq!(
                out, expected,
                "streaming substitution differs from the whole buffer"
            );
        }
        (Err(_), Some(_)) => {}
        (expected, failed) => panic!(
            "the stream and the whole buffer disagree on refusing: {:?} vs {:?}",
            expected.is_err(),
            failed.is_some()
        ),
    }
}

/// The table every scrubber run uses (built once: building the automaton dominated a run).
fn scrub_table() -> ScrubTable {
    static TABLE: std::sync::OnceLock<ScrubTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(build_scrub_table).clone()
}

fn build_scrub_table() -> ScrubTable {
    let (first, second) = (token(1), token(2));
    let pairs: [(&[u8], &[u8]); 2] = [
        (b"sk-live-abcdef", first.as_bytes()),
        (b"p@ss/w+rd \"q\"", second.as_bytes()),
    ];
    ScrubTable::from_values(&pairs).unwrap_or_else(|| unreachable!("two values make a table"))
}

/// The streaming scrubber equals `scrub_all` on the whole input whatever the cuts, and with
/// flushes in between it never hands out a whole raw value.
pub fn scrubber_differential(data: &[u8]) {
    let table = scrub_table();
    let (cuts, rest) = split_input(data);
    let mut input = rest.to_vec();
    if let Some(&at) = rest.first() {
        let at = usize::from(at) % (input.len() + 1);
        input.splice(at..at, b"sk-live-abcdef".iter().copied());
    }
    let expected = table.scrub_all(&input).unwrap_or_else(|| input.clone());
    let mut scrubber = StreamScrubber::new(table.clone());
    let mut out = Vec::new();
    for piece in pieces(&input, &cuts) {
        out.extend_from_slice(&scrubber.feed(piece));
    }
    out.extend_from_slice(&scrubber.finish());
    assert_eq!(
        out, expected,
        "streaming scrubbing differs from the whole buffer"
    );

    let mut flushing = StreamScrubber::new(table);
    let mut flushed = Vec::new();
    for (i, piece) in pieces(&input, &cuts).into_iter().enumerate() {
        flushed.extend_from_slice(&flushing.feed(piece));
        if i % 2 == 1 {
            flushed.extend_from_slice(&flushing.flush());
        }
    }
    flushed.extend_from_slice(&flushing.finish());
    let whole = b"sk-live-abcdef";
    assert!(
        !flushed.windows(whole.len()).any(|window| window == whole),
        "a flush let a whole value through"
    );
}

fn session() -> Arc<Session> {
    let secret = Arc::new(SealedSecret {
        name: "KEY".into(),
        token: token(1),
        value: SecretValue::from("V4LUE"),
        allowed_hosts: vec![],
        version: 0,
    });
    let allow = HostPattern::parse("origin.test")
        .map(|p| vec![p])
        .unwrap_or_default();
    Arc::new(Session::new(
        SandboxId::new(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        allow,
        [secret],
    ))
}

/// Whether `bytes` hold a whole, well-formed sealed token (near misses may pass as they are).
fn holds_a_token(bytes: &[u8]) -> bool {
    let prefix = osb_proto::SEALED_TOKEN_PREFIX.as_bytes();
    memchr::memmem::find_iter(bytes, prefix).any(|at| {
        bytes
            .get(at..at + osb_proto::SEALED_TOKEN_LEN)
            .is_some_and(|window| SealedToken::from_bytes(window).is_ok())
    })
}

/// The express lane's request parser never panics, and whatever it serves it rewrites into a
/// request with exactly one `Host`, an exact `Content-Length` and no token left.
pub fn express_request(data: &[u8]) {
    let request::Parsed::Express(head) = request::parse(data, 64 * 1024) else {
        return;
    };
    if data.len() < head.total_len() {
        return;
    }
    let target = Target {
        scheme: Scheme::Https,
        host: "origin.test".into(),
        port: 443,
    };
    let mut resolver = RequestSubstitution::new(SealingPolicy::default(), session(), target);
    let Ok(wire) = request::upstream_request_offering(
        data,
        &head,
        "origin.test",
        Some(crate::encoding::OFFERED),
        &mut resolver,
    ) else {
        return;
    };
    let text = String::from_utf8_lossy(&wire).to_ascii_lowercase();
    let head_text = text.split("\r\n\r\n").next().unwrap_or("");
    assert_eq!(
        head_text.matches("\r\nhost:").count(),
        1,
        "exactly one Host"
    );
    assert!(!holds_a_token(&wire), "a token was forwarded");
    assert_eq!(head_text.matches("\r\naccept-encoding:").count(), 1);
}

/// The express lane's response parser never panics; a final head's ranges lie inside the input.
pub fn express_response(data: &[u8]) {
    for request_was_head in [false, true] {
        if let Ok(response::Parsed::Final(head)) = response::parse(data, request_was_head) {
            assert!(head.head_len <= data.len());
            for (name, value) in &head.forwarded {
                assert!(name.end <= head.head_len && value.end <= head.head_len);
            }
            let mut out = Vec::new();
            response::client_head(
                data,
                &head,
                Some(&scrub_table()),
                response::ClientFraming::Chunked,
                false,
                &mut out,
            );
            assert!(out.ends_with(b"\r\n\r\n"));
        }
    }
}

/// The chunked decoder never panics, never yields more bytes than it was given, and decodes the
/// same data whatever the read sizes.
pub fn chunked(data: &[u8]) {
    let (cuts, rest) = split_input(data);
    let decode = |parts: Vec<&[u8]>| {
        let mut decoder = ChunkedDecoder::new();
        let mut input = BytesMut::new();
        let mut output = BytesMut::new();
        for part in parts {
            input.extend_from_slice(part);
            if decoder.decode(&mut input, &mut output).is_err() {
                return None;
            }
        }
        Some((output.to_vec(), decoder.is_done()))
    };
    let whole = decode(vec![rest]);
    let cut = decode(pieces(rest, &cuts));
    if let (Some(whole), Some(cut)) = (&whole, &cut) {
        assert!(whole.0.len() <= rest.len());
        if whole.1 && cut.1 {
            assert_eq!(whole.0, cut.0, "read sizes changed the decoded body");
        }
    }
}

/// The authority and host-pattern parsers never panic, and what they accept is normalised and
/// stable (parsing the normal form again gives the same answer).
pub fn authority(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((host, port)) = split_authority(text) {
        assert!(!host.is_empty());
        assert_eq!(
            host.to_ascii_lowercase(),
            host.as_ref(),
            "hosts are lowercase"
        );
        let again = match port {
            Some(port) if host.contains(':') => format!("[{host}]:{port}"),
            Some(port) => format!("{host}:{port}"),
            None if host.contains(':') => format!("[{host}]"),
            None => host.to_string(),
        };
        let reparsed = split_authority(&again).map(|(h, p)| (h.into_owned(), p));
        assert_eq!(reparsed, Some((host.into_owned(), port)));
    }
    if let Ok(pattern) = HostPattern::parse(text) {
        let normal = pattern.to_string();
        assert_eq!(
            HostPattern::parse(&normal).map(|p| p.to_string()),
            Ok(normal)
        );
    }
}

/// WebSocket frame heads: never a panic, and a parsed head never claims more than it read.
pub fn websocket_frames(data: &[u8]) {
    if let Ok(Some(head)) = crate::websocket::frame::parse_head(data) {
        assert!(head.head_len <= data.len() && head.head_len <= 14);
        assert!(!head.is_control() || (head.fin && head.length <= 125));
    }
}

/// The content decoder never panics on arbitrary (corrupt) input and every step is bounded.
pub fn decoder(data: &[u8]) {
    use crate::encoding::{Coding, Decoder};
    for coding in [Coding::Gzip, Coding::Deflate] {
        let Some(mut decoder) = Decoder::for_coding(coding) else {
            continue;
        };
        let Ok(first) = decoder.push(data) else {
            continue;
        };
        assert!(first.len() <= 160 * 1024);
        let mut steps = 0;
        while decoder.has_input() && steps < 10_000 {
            match decoder.step() {
                Ok(step) => assert!(step.len() <= 160 * 1024),
                Err(_) => break,
            }
            steps += 1;
        }
        let _ = decoder.finish();
    }
}

#[cfg(test)]
mod tests {
    //! The proptest twins of the fuzz targets: the same oracles on generated bytes, in CI.

    use proptest::prelude::*;

    use super::*;

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..600)
    }

    fn texty() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b"GET /a?k=".to_vec()),
                Just(b" HTTP/1.1\r\n".to_vec()),
                Just(b"Host: origin.test\r\n".to_vec()),
                Just(b"Content-Length: 5\r\n".to_vec()),
                Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(token(1).as_bytes().to_vec()),
                Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
                Just(b"5\r\nhello\r\n0\r\n\r\n".to_vec()),
                Just(b"sk-live-".to_vec()),
                Just(b"abcdef".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..8),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn replacer_twin(data in bytes()) { replacer_differential(&data) }
        #[test]
        fn scrubber_twin(data in prop_oneof![bytes(), texty()]) { scrubber_differential(&data) }
        #[test]
        fn express_request_twin(data in prop_oneof![bytes(), texty()]) { express_request(&data) }
        #[test]
        fn express_response_twin(data in prop_oneof![bytes(), texty()]) { express_response(&data) }
        #[test]
        fn chunked_twin(data in prop_oneof![bytes(), texty()]) { chunked(&data) }
        #[test]
        fn authority_twin(text in "[a-zA-Z0-9.:\\[\\]*_-]{0,40}") { authority(text.as_bytes()) }
        #[test]
        fn websocket_frames_twin(data in bytes()) { websocket_frames(&data) }
        #[test]
        fn decoder_twin(data in bytes()) { decoder(&data) }
    }
}
