//! Unit tests of head rewriting: Basic auth, percent-encoding, hop-by-hop, redaction, scrubbing.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use osb_proto::{ErrorCode, HostPattern, SandboxId};

use super::*;
use crate::policy::{Scheme, SealingPolicy, Target};
use crate::secret_value::SecretValue;
use crate::session::SealedSecret;

fn token(byte: u8) -> SealedToken {
    SealedToken::from_random_bytes([byte; 16])
}

fn session() -> Arc<Session> {
    let secret = Arc::new(SealedSecret {
        name: "KEY".into(),
        token: token(1),
        value: SecretValue::from("p@ss w/rd"),
        allowed_hosts: vec![],
        version: 0,
    });
    Arc::new(Session::new(
        SandboxId::new(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        vec![HostPattern::parse("api.example.test").unwrap()],
        [secret],
    ))
}

fn resolver() -> RequestSubstitution {
    RequestSubstitution::new(
        SealingPolicy::default(),
        session(),
        Target {
            scheme: Scheme::Https,
            host: "api.example.test".into(),
            port: 443,
        },
    )
}

#[test]
fn basic_auth_is_decoded_and_reencoded() {
    let credentials = STANDARD.encode(format!("user:{}", token(1)));
    let value = HeaderValue::from_str(&format!("Basic {credentials}")).unwrap();
    let out = substitute_header_value(&header::AUTHORIZATION, &value, &mut resolver()).unwrap();
    assert_eq!(
        out.to_str().unwrap(),
        format!("Basic {}", STANDARD.encode("user:p@ss w/rd"))
    );
    assert!(out.is_sensitive());
}

#[test]
fn path_values_are_percent_encoded() {
    let path = format!("/v1/{}/x?key={}&a=b", token(1), token(1));
    let out = substitute_path_and_query(&path, &mut resolver()).unwrap();
    assert_eq!(
        out.as_str(),
        "/v1/p%40ss%20w%2Frd/x?key=p%40ss%20w%2Frd&a=b"
    );
}

#[test]
fn hop_by_hop_headers_are_dropped_and_tokens_replaced() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, x-drop"),
    );
    headers.insert("x-drop", HeaderValue::from_static("1"));
    headers.insert(header::HOST, HeaderValue::from_static("api.example.test"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
    headers.insert(
        "x-api-key",
        HeaderValue::from_str(token(1).as_str()).unwrap(),
    );
    let out =
        rewrite_request_headers(&headers, RequestHeaderRules::default(), &mut resolver()).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out["x-api-key"], "p@ss w/rd");
}

#[test]
fn foreign_token_in_a_header_is_refused() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-api-key",
        HeaderValue::from_str(token(9).as_str()).unwrap(),
    );
    let refusal = rewrite_request_headers(&headers, RequestHeaderRules::default(), &mut resolver())
        .unwrap_err();
    assert_eq!(refusal.code, ErrorCode::UnknownToken);
}

#[test]
fn paths_in_events_name_secrets_not_tokens() {
    let session = session();
    let path = format!("/a/{}/{}", token(1), token(2));
    assert_eq!(
        redact_path(&path, Some(&session)),
        "/a/{KEY}/{unknown_token}"
    );
}

#[test]
fn response_headers_are_scrubbed() {
    let session = session();
    let table = ScrubTable::for_session(&session).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-echo", HeaderValue::from_static("got p@ss w/rd"));
    headers.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    scrub_response_headers(&mut headers, Some(&table), false);
    assert_eq!(headers["x-echo"], format!("got {}", token(1)).as_str());
    assert!(!headers.contains_key(header::TRANSFER_ENCODING));
}

#[test]
fn a_header_whose_name_carries_a_value_is_dropped() {
    let sealed = token(1);
    let pairs: [(&[u8], &[u8]); 1] = [(b"MixedCaseValue123", sealed.as_bytes())];
    let table = ScrubTable::from_values(&pairs).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-mixedcasevalue123-leak", HeaderValue::from_static("1"));
    headers.insert("x-kept", HeaderValue::from_static("2"));
    scrub_response_headers(&mut headers, Some(&table), false);
    assert!(!headers.contains_key("x-mixedcasevalue123-leak"));
    assert_eq!(headers["x-kept"], "2");
}
