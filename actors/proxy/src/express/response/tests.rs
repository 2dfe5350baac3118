//! Unit tests of the express lane's response side: framing decisions and the head the sandbox
//! sees.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use osb_proto::{HostPattern, SandboxId, SealedToken};

use super::*;
use crate::secret_value::SecretValue;
use crate::session::{SealedSecret, Session};

fn final_head(raw: &[u8], request_was_head: bool) -> ResponseHead {
    match parse(raw, request_was_head) {
        Ok(Parsed::Final(head)) => head,
        other => panic!("expected a final head, got {other:?}"),
    }
}

#[test]
fn framing_follows_rfc_9112() {
    let cases: [(&[u8], bool, Framing, bool); 6] = [
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            false,
            Framing::Length(5),
            false,
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n",
            false,
            Framing::Chunked,
            true,
        ),
        (b"HTTP/1.1 200 OK\r\n\r\n", false, Framing::UntilClose, true),
        (
            b"HTTP/1.1 204 No Content\r\n\r\n",
            false,
            Framing::Bodiless,
            false,
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n",
            true,
            Framing::Bodiless,
            false,
        ),
        (
            b"HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n",
            false,
            Framing::Length(1),
            true,
        ),
    ];
    for (raw, was_head, framing, close) in cases {
        let head = final_head(raw, was_head);
        assert_eq!(
            (head.framing, head.close),
            (framing, close),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert!(
        final_head(
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            false
        )
        .close
    );
}

#[test]
fn interim_responses_are_skipped_and_bad_ones_refused() {
    let raw = b"HTTP/1.1 103 Early Hints\r\nlink: x\r\n\r\n";
    assert_eq!(parse(raw, false), Ok(Parsed::Interim(raw.len())));
    assert!(parse(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", false).is_err());
    assert!(parse(
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
        false
    )
    .is_err());
    assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", false).is_err());
    assert!(parse(b"garbage\r\n\r\n", false).is_err());
    assert_eq!(parse(b"HTTP/1.1 200 OK\r\n", false), Ok(Parsed::Partial));
}

#[test]
fn the_client_head_drops_hop_by_hop_headers_and_scrubs_values() {
    let token = SealedToken::from_random_bytes([1; 16]);
    let session = Session::new(
        SandboxId::new(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        vec![HostPattern::parse("a.test").unwrap()],
        [Arc::new(SealedSecret {
            name: "KEY".into(),
            token,
            value: SecretValue::from("sk-live-1"),
            allowed_hosts: vec![],
            version: 0,
        })],
    );
    let table = ScrubTable::for_session(&session).unwrap();
    let raw = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, x-hop\r\nx-hop: 1\r\nKeep-Alive: timeout=5\r\nx-echo: key=sk-live-1\r\ncontent-length: 3\r\n\r\n";
    let head = final_head(raw, false);
    let mut out = Vec::new();
    client_head(
        raw,
        &head,
        Some(&table),
        ClientFraming::Chunked,
        true,
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("HTTP/1.1 200 OK\r\nx-echo: key={token}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
    );
    let head_response = final_head(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", true);
    let mut out = Vec::new();
    client_head(
        b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n",
        &head_response,
        None,
        ClientFraming::Bodiless,
        false,
        &mut out,
    );
    assert_eq!(out, b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n");
}

#[test]
fn decimals_are_written_exactly() {
    for value in [0u64, 7, 10, 200, 65_535, u64::MAX] {
        let mut out = Vec::new();
        push_decimal(&mut out, value);
        assert_eq!(out, value.to_string().into_bytes());
    }
}

#[test]
fn transfer_codings_other_than_chunked_are_refused() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
    ] {
        let reason = parse(raw, false).unwrap_err();
        assert!(reason.contains("transfer-coding"), "{reason}");
    }
}

/// The length-first check names exactly the hop-by-hop headers (but `Host`) and
/// `Content-Length`, in any case.
#[test]
fn the_lane_frames_exactly_the_hop_by_hop_headers_and_the_length() {
    let mut expected: Vec<&str> = crate::rewrite::HOP_BY_HOP
        .iter()
        .copied()
        .filter(|name| *name != "host")
        .collect();
    expected.push("content-length");
    for name in &expected {
        assert!(is_framed_by_the_lane(name.as_bytes()), "{name}");
        assert!(
            is_framed_by_the_lane(name.to_ascii_uppercase().as_bytes()),
            "{name}"
        );
    }
    for name in [
        "host",
        "content-type",
        "x-te",
        "tea",
        "connections",
        "set-cookie",
        "",
    ] {
        assert!(!is_framed_by_the_lane(name.as_bytes()), "{name}");
    }
}
