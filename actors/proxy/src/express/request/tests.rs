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
        version: 0,
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

mod properties {
    use proptest::prelude::*;

    use super::*;

    const NAMES: [&str; 15] = [
        "Host",
        "Content-Length",
        "Connection",
        "Keep-Alive",
        "Proxy-Authorization",
        "Authorization",
        "X-Key",
        "Accept",
        "Transfer-Encoding",
        "Expect",
        "Upgrade",
        "TE",
        "Trailer",
        "Proxy-Connection",
        "X-Custom",
    ];

    fn value() -> impl Strategy<Value = String> {
        let token = token(1).to_string();
        let basic = format!("Basic {}", STANDARD.encode(format!("u:{token}")));
        prop_oneof![
            Just("keep-alive".to_owned()),
            Just("close".to_owned()),
            Just("keep-alive, x-custom".to_owned()),
            Just("chunked".to_owned()),
            Just("100-continue".to_owned()),
            Just("3".to_owned()),
            Just("api.example.test".to_owned()),
            Just(format!("Bearer {token}")),
            Just(basic),
            "[ -~]{0,20}",
        ]
    }

    fn header() -> impl Strategy<Value = (String, String)> {
        (0..NAMES.len(), any::<bool>(), value()).prop_map(|(index, upper, value)| {
            let name = if upper {
                NAMES[index].to_ascii_uppercase()
            } else {
                NAMES[index].to_ascii_lowercase()
            };
            (name, value)
        })
    }

    fn hop_by_hop_or_framing(name: &str) -> bool {
        crate::rewrite::HOP_BY_HOP.contains(&name) || name == "content-length"
    }

    proptest! {
        // About one case in six reaches the rewrite checks (the others carry a header the lane
        // leaves to hyper), so run more than the default 256.
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Any bytes: the parser answers without panicking.
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&bytes, CAP);
        }

        /// Whatever the headers, a request the lane serves has none of the headers it leaves to
        /// hyper, and the request it writes upstream parses back to exactly one Host, no
        /// hop-by-hop header, a Content-Length equal to the body it carries, the forwarded
        /// headers in order with tokens substituted, and no token of the session left.
        #[test]
        fn what_the_lane_serves_it_rewrites_faithfully(
            method in prop_oneof![Just("GET"), Just("POST"), Just("HEAD"), Just("CONNECT")],
            headers in proptest::collection::vec(header(), 0..8),
            body in "[a-z ]{0,6}",
        ) {
            let mut raw = format!("{method} /p?k={} HTTP/1.1\r\n", token(1));
            for (name, value) in &headers {
                raw.push_str(&format!("{name}: {value}\r\n"));
            }
            raw.push_str("\r\n");
            raw.push_str(&body);
            let Parsed::Express(head) = parse(raw.as_bytes(), CAP) else { return Ok(()) };
            let lowered: Vec<String> = headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
            for left in ["transfer-encoding", "expect", "upgrade", "te", "trailer"] {
                prop_assert!(!lowered.iter().any(|n| n == left), "{left} served by the lane");
            }
            prop_assert!(lowered.iter().filter(|n| *n == "host").count() <= 1);
            prop_assert!(lowered.iter().filter(|n| *n == "content-length").count() <= 1);
            prop_assert!(method != "CONNECT");
            if raw.len() < head.total_len() {
                return Ok(());
            }
            let wire = upstream_request(raw.as_bytes(), &head, "origin.test", &mut resolver("V4LUE"));
            let wire = match wire {
                Ok(wire) => wire,
                Err(refusal) => {
                    prop_assert_eq!(refusal.code, ErrorCode::InvalidInput);
                    return Ok(());
                }
            };
            let mut parsed_headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Request::new(&mut parsed_headers);
            let Ok(httparse::Status::Complete(head_len)) = parsed.parse(&wire) else {
                return Err(TestCaseError::fail("the upstream request does not parse"));
            };
            prop_assert_eq!(parsed.method, Some(method));
            prop_assert_eq!(parsed.path, Some("/p?k=V4LUE"));
            let sent: Vec<(String, Vec<u8>)> = parsed
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                .collect();
            prop_assert_eq!(sent.iter().filter(|(n, _)| n == "host").count(), 1);
            prop_assert_eq!(&sent[0], &("host".to_owned(), b"origin.test".to_vec()));
            let sent_body = &wire[head_len..];
            let sent_length = sent_body.len().to_string().into_bytes();
            match sent.iter().find(|(n, _)| n == "content-length") {
                Some((_, length)) => prop_assert_eq!(length, &sent_length),
                None => prop_assert!(sent_body.is_empty()),
            }
            let expected: Vec<(String, Vec<u8>)> = headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
                .filter(|(n, _)| !hop_by_hop_or_framing(n))
                .map(|(n, v)| {
                    let v = v.replace(&token(1).to_string(), "V4LUE");
                    let v = if n == "authorization" && v.starts_with("Basic ") {
                        format!("Basic {}", STANDARD.encode("u:V4LUE"))
                    } else {
                        v
                    };
                    (n, v.into_bytes())
                })
                .collect();
            let forwarded: Vec<(String, Vec<u8>)> = sent
                .into_iter()
                .skip(1)
                .filter(|(n, _)| n != "content-length")
                .collect();
            prop_assert_eq!(forwarded, expected);
            prop_assert!(memchr::memmem::find(&wire, token(1).as_bytes()).is_none());
        }
    }

    /// Token-bearing pieces a request head may carry anywhere: the session's token, an unknown
    /// one, a bare prefix, Basic credentials and plain text.
    fn piece() -> impl Strategy<Value = String> {
        let known = token(1).to_string();
        let unknown = token(2).to_string();
        prop_oneof![
            Just(known.clone()),
            Just(unknown),
            Just("osb_sealed_".to_owned()),
            Just(format!("Basic {}", STANDARD.encode(format!("u:{known}")))),
            Just(format!("{known}{known}")),
            "[ -~]{0,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Searching only the parts of the head where the one-pass scan saw a token prefix
        /// writes exactly what searching every part writes (or refuses the same way), with the
        /// same substitutions counted — whatever the head carries and wherever.
        #[test]
        fn the_one_pass_scan_changes_nothing(
            in_path in piece(),
            headers in proptest::collection::vec(
                (prop_oneof![
                    Just("Authorization".to_owned()),
                    Just("X-Key".to_owned()),
                    Just(format!("X-{}", token(1))),
                    Just("Accept-Encoding".to_owned()),
                    Just("Range".to_owned()),
                ], proptest::collection::vec(piece(), 1..4)),
                0..10,
            ),
            body in piece(),
            offered in any::<bool>(),
        ) {
            let mut raw = format!("POST /p?k={} HTTP/1.1\r\n", in_path.replace(' ', "+"));
            for (name, pieces) in &headers {
                raw.push_str(&format!("{name}: {}\r\n", pieces.concat()));
            }
            raw.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
            let Parsed::Express(head) = parse(raw.as_bytes(), CAP) else { return Ok(()) };
            let offered = offered.then_some(crate::encoding::OFFERED);
            let write = |sites: TokenSites| {
                let mut resolver = resolver("V4LUE");
                let wire = upstream_request_with(
                    raw.as_bytes(), &head, "origin.test", offered, &mut resolver, sites,
                );
                (
                    wire.map(|wire| wire.to_vec()).map_err(|refusal| (refusal.code, refusal.message)),
                    resolver.substitutions(),
                    resolver.used().clone(),
                )
            };
            let scanned = write(TokenSites::scan(&raw.as_bytes()[..head.head_len]));
            prop_assert_eq!(scanned, write(TokenSites::everywhere()));
        }
    }
}
