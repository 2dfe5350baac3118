//! Unit tests of the express lane's request side: which requests it serves, which it leaves to
//! hyper, and the exact upstream bytes it writes.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use osb_proto::{ErrorCode, HostPattern, SandboxId, SealedToken};

use super::*;
use crate::policy::{Scheme, SealingPolicy, Target};
use crate::secret_value::SecretValue;
use crate::session::{SealedSecret, Session};

const CAP: usize = 1024;

fn token(byte: u8) -> SealedToken {
    SealedToken::from_random_bytes([byte; 16])
}

fn resolver(value: &str) -> RequestSubstitution {
    let secret = Arc::new(SealedSecret {
        name: "KEY".into(),
        token: token(1),
        value: SecretValue::from(value),
        allowed_hosts: vec![],
    });
    let session = Arc::new(Session::new(
        SandboxId::new(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        vec![HostPattern::parse("api.example.test").unwrap()],
        [secret],
    ));
    RequestSubstitution::new(
        SealingPolicy::default(),
        session,
        Target {
            scheme: Scheme::Https,
            host: "api.example.test".into(),
            port: 443,
        },
    )
}

fn express(raw: &[u8]) -> RequestHead {
    match parse(raw, CAP) {
        Parsed::Express(head) => head,
        other => panic!(
            "expected the express lane for {:?}, got {other:?}",
            String::from_utf8_lossy(raw)
        ),
    }
}

fn rewritten(raw: &str, value: &str) -> Result<String, Refusal> {
    let head = express(raw.as_bytes());
    let wire = upstream_request(
        raw.as_bytes(),
        &head,
        "api.example.test",
        &mut resolver(value),
    )?;
    Ok(String::from_utf8(wire.to_vec()).unwrap())
}

#[test]
fn a_simple_request_is_rewritten_with_hop_by_hop_headers_dropped() {
    let body = format!("{{\"key\":\"{}\"}}", token(1));
    let raw = format!(
        "POST /v1/x?k={t} HTTP/1.1\r\nHost: api.example.test\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nProxy-Authorization: x\r\nAuthorization: Bearer {t}\r\nX-Other:  v \r\nContent-Length: {}\r\n\r\n{body}",
        body.len(),
        t = token(1)
    );
    let out = rewritten(&raw, "s3cr3t").unwrap();
    assert_eq!(
        out,
        "POST /v1/x?k=s3cr3t HTTP/1.1\r\nhost: api.example.test\r\nAuthorization: Bearer s3cr3t\r\nX-Other: v\r\ncontent-length: 16\r\n\r\n{\"key\":\"s3cr3t\"}"
    );
}

#[test]
fn a_bodiless_request_gets_no_content_length_and_close_is_noticed() {
    let raw = "GET / HTTP/1.1\r\nhost: api.example.test\r\nconnection: close\r\n\r\n";
    let head = express(raw.as_bytes());
    assert!(head.close);
    assert_eq!(head.total_len(), raw.len());
    assert_eq!(
        rewritten(raw, "v").unwrap(),
        "GET / HTTP/1.1\r\nhost: api.example.test\r\n\r\n"
    );
}

#[test]
fn basic_credentials_are_decoded_and_reencoded() {
    let credentials = STANDARD.encode(format!("user:{}", token(1)));
    let raw = format!("GET / HTTP/1.1\r\nauthorization: Basic {credentials}\r\n\r\n");
    let out = rewritten(&raw, "p@ss").unwrap();
    assert!(
        out.contains(&format!(
            "authorization: Basic {}\r\n",
            STANDARD.encode("user:p@ss")
        )),
        "{out}"
    );
}

#[test]
fn a_value_that_would_break_the_header_is_refused() {
    let raw = format!("GET / HTTP/1.1\r\nx-key: {}\r\n\r\n", token(1));
    let refusal = rewritten(&raw, "evil\r\nx-injected: 1").unwrap_err();
    assert_eq!(refusal.code, ErrorCode::InvalidInput);
}

#[test]
fn a_foreign_token_is_refused() {
    let raw = format!("GET / HTTP/1.1\r\nx-key: {}\r\n\r\n", token(9));
    assert_eq!(
        rewritten(&raw, "v").unwrap_err().code,
        ErrorCode::UnknownToken
    );
}

#[test]
fn an_incomplete_head_asks_for_more() {
    assert_eq!(parse(b"GET / HTTP/1.1\r\nhost: a", CAP), Parsed::Partial);
    assert_eq!(parse(b"", CAP), Parsed::Partial);
}

#[test]
fn anything_unusual_is_left_to_hyper() {
    let cases: [&[u8]; 14] = [
        b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\ncontent-length: 1\r\nexpect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n",
        b"GET / HTTP/1.1\r\nconnection: x-secret-header\r\n\r\n",
        b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n",
        b"POST / HTTP/1.1\r\ncontent-length: 2000\r\n\r\n",
        b"POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\ncontent-length: 1,1\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"CONNECT a:443 HTTP/1.1\r\n\r\n",
        b"GET http://a/ HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nte: trailers\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ];
    for raw in cases {
        assert_eq!(
            parse(raw, CAP),
            Parsed::Hyper,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(
        parse(b"GET / HTTP/1.1\r\nbad header\r\n\r\n", CAP),
        Parsed::Hyper
    );
    let huge = format!("GET / HTTP/1.1\r\nx: {}", "a".repeat(MAX_HEAD));
    assert_eq!(parse(huge.as_bytes(), CAP), Parsed::Hyper);
}
