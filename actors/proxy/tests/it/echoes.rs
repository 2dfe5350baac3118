//! Every echo channel is scrubbed (issue 11 items 2 and 3): a value the proxy put into a request
//! must not come back into the sandbox compressed (gzip, deflate), encoded (base64 at any byte
//! alignment, both alphabets; JSON escapes; percent-encoding; the `Basic` credentials the proxy
//! encoded), in trailers or in a reason phrase — on the express lane and on hyper, HTTP/1.1 and
//! HTTP/2. A content coding the proxy cannot decode is refused with a 502 and a JSON reason.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Frame;

use crate::support::client::{body, Client};
use crate::support::harness::{sandbox_ip, token, Harness, Options};
use crate::support::hostile_origin::{
    channel_body, full, start_hostile_origin, Handler, HostileBody,
};

/// A value whose encodings all differ from it (`/`, `+`, quotes, `&`, `=`).
const VALUE: &str = "s3cr3t/value+\"quoted\"&more=1";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Every way the value could be read back out of `bytes`: raw, or by decoding any base64 run.
fn reveals_value(bytes: &[u8]) -> bool {
    if contains(bytes, VALUE.as_bytes()) {
        return true;
    }
    let text = String::from_utf8_lossy(bytes);
    let runs = text.split(|c: char| !(c.is_ascii_alphanumeric() || "+/-_=".contains(c)));
    runs.filter(|run| run.len() >= 8).any(|run| {
        (0..4).any(|skip| {
            let run = run.trim_end_matches('=');
            let run = &run[skip.min(run.len())..];
            let usable = run.len() / 4 * 4;
            [STANDARD, URL_SAFE].iter().any(|engine| {
                engine
                    .decode(&run[..usable])
                    .map(|decoded| contains(&decoded, VALUE.as_bytes()))
                    .unwrap_or(false)
            })
        })
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// What a client that honours `Content-Encoding` would end up reading.
fn decoded(headers: &str, body: &[u8]) -> Vec<u8> {
    let headers = headers.to_ascii_lowercase();
    if headers.contains("content-encoding: gzip") {
        gunzip(body)
    } else if headers.contains("content-encoding: deflate") {
        inflate(body)
    } else {
        body.to_vec()
    }
}

/// Modes of the sandbox's client: (express lane on, HTTP/2).
const MODES: [(bool, bool); 3] = [(true, false), (false, false), (true, true)];

struct Setup {
    h: Harness,
    authority: String,
    seen_accept_encoding: Arc<Mutex<Vec<String>>>,
}

/// A proxy, a hostile origin at api.example.test that answers with `reply(path)`, and the
/// sandbox at 127.0.0.2 whose secret may go there.
async fn setup(express: bool, reply: fn(&str, &HeaderMap) -> Response<HostileBody>) -> Setup {
    let h = Harness::start_with(Options {
        express,
        ..Options::default()
    })
    .await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let handler: Handler = Arc::new(move |request: Request<hyper::body::Incoming>| {
        let log = Arc::clone(&log);
        Box::pin(async move {
            let accept = request
                .headers()
                .get("accept-encoding")
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .unwrap_or_default();
            log.lock().unwrap().push(accept);
            reply(request.uri().path(), request.headers())
        })
    });
    let hostile = start_hostile_origin(h.origin.tls_config.clone(), handler).await;
    let authority = format!("api.example.test:{}", hostile.port());
    h.sandbox(
        2,
        std::slice::from_ref(&authority),
        &[("KEY", 1, VALUE, &[])],
    );
    Setup {
        h,
        authority,
        seen_accept_encoding: seen,
    }
}

impl Setup {
    async fn client(&self, http2: bool) -> Client {
        Client::through(
            sandbox_ip(2),
            self.h.proxy.explicit_addr(),
            &self.authority,
            self.h.proxy.ca_cert_pem(),
            http2,
        )
        .await
    }

    fn request(&self, http2: bool, path: &str) -> http::request::Builder {
        let uri = if http2 {
            format!("https://{}{path}", self.authority)
        } else {
            path.to_owned()
        };
        Request::get(uri).header("host", self.authority.as_str())
    }
}

fn echo_reply(path: &str, request: &HeaderMap) -> Response<HostileBody> {
    let value = request
        .get("x-api-key")
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let mut text = b"echo:".to_vec();
    text.extend_from_slice(&value);
    text.extend_from_slice(b":end");
    let (coding, bytes) = match path {
        "/gzip" => ("gzip", gzip(&text)),
        "/deflate" => ("deflate", deflate(&text)),
        "/br" => ("br", b"\x1b\x03\x00\xf8not really brotli".to_vec()),
        "/stacked" => ("gzip, gzip", gzip(&gzip(&text))),
        "/named" => ("", text),
        _ => ("identity", text),
    };
    let named = HeaderValue::from_bytes(&value).unwrap_or(HeaderValue::from_static("x"));
    let mut response = Response::new(full(bytes));
    let coding = if coding.is_empty() {
        // A "coding" named after the value the origin received: the refusal must not quote it.
        named
    } else {
        HeaderValue::from_static(coding)
    };
    response.headers_mut().insert("content-encoding", coding);
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_echoes_are_decoded_and_scrubbed_on_every_front_end() {
    for (express, http2) in MODES {
        let s = setup(express, echo_reply).await;
        let mut client = s.client(http2).await;
        for path in ["/gzip", "/deflate"] {
            let request = s
                .request(http2, path)
                .header("accept-encoding", "gzip, deflate, br, zstd")
                .header("x-api-key", token(1).as_str())
                .body(body(""))
                .unwrap();
            let (status, headers, answer) = client.send(request).await;
            let case = format!("express={express} http2={http2} {path}");
            assert_eq!(status, 200, "{case}: {headers}");
            let readable = decoded(&headers, &answer);
            assert!(
                !reveals_value(&readable),
                "{case}: the value came back compressed"
            );
            assert_eq!(
                readable,
                format!("echo:{}:end", token(1)).into_bytes(),
                "{case}: the echo arrives scrubbed and readable"
            );
        }
        for accept in s.seen_accept_encoding.lock().unwrap().iter() {
            let accept = accept.to_ascii_lowercase();
            assert!(
                !accept.contains("br") && !accept.contains("zstd"),
                "codings the proxy cannot scrub are not offered upstream: {accept}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coding_the_proxy_cannot_decode_is_refused_with_a_reason() {
    for (express, http2) in MODES {
        let s = setup(express, echo_reply).await;
        let mut client = s.client(http2).await;
        for path in ["/br", "/stacked", "/named"] {
            let request = s
                .request(http2, path)
                .header("x-api-key", token(1).as_str())
                .body(body(""))
                .unwrap();
            let (status, _, answer) = client.send(request).await;
            let case = format!("express={express} http2={http2} {path}");
            assert_eq!(status, 502, "{case}");
            let reason: serde_json::Value = serde_json::from_slice(&answer).unwrap();
            assert_eq!(reason["code"], "unscrubbable_response", "{case}");
            assert!(
                reason["error"].as_str().unwrap().contains("encoding"),
                "{case}"
            );
        }
    }
}

fn encoded_reply(_path: &str, _request: &HeaderMap) -> Response<HostileBody> {
    let value = VALUE.as_bytes();
    let mut text = Vec::new();
    for prefix in [&b""[..], b"a", b"ab", b"user:"] {
        let mut joined = prefix.to_vec();
        joined.extend_from_slice(value);
        for engine in [STANDARD, URL_SAFE] {
            text.extend_from_slice(b" b64=");
            text.extend_from_slice(engine.encode(&joined).as_bytes());
        }
    }
    text.extend_from_slice(b" json=");
    text.extend_from_slice(serde_json::to_string(VALUE).unwrap().as_bytes());
    text.extend_from_slice(b" json-slash=");
    text.extend_from_slice(
        VALUE
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('/', "\\/")
            .as_bytes(),
    );
    text.extend_from_slice(b" percent=s3cr3t%2Fvalue%2B%22quoted%22%26more%3D1");
    text.extend_from_slice(b" lower=s3cr3t%2fvalue%2b%22quoted%22%26more%3d1 end");
    Response::new(full(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_echoes_never_reveal_the_value() {
    for (express, http2) in MODES {
        let s = setup(express, encoded_reply).await;
        let mut client = s.client(http2).await;
        let request = s.request(http2, "/encoded").body(body("")).unwrap();
        let (status, _, answer) = client.send(request).await;
        let case = format!("express={express} http2={http2}");
        assert_eq!(status, 200, "{case}");
        assert!(
            !reveals_value(&answer),
            "{case}: {}",
            String::from_utf8_lossy(&answer)
        );
        for needle in ["\\/value", "%2Fvalue", "%2fvalue", "\\\"quoted"] {
            assert!(
                !contains(&answer, needle.as_bytes()),
                "{case}: {needle} passed"
            );
        }
        assert!(
            contains(&answer, b" end"),
            "{case}: the rest of the body passes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_basic_credentials_the_proxy_encoded_are_scrubbed_from_an_echo() {
    let h = Harness::start().await;
    h.sandbox(2, &[h.at("api.example.test")], &[("KEY", 1, VALUE, &[])]);
    let user = format!("user:{}", token(1));
    for http in ["--http1.1", "--http2"] {
        let out = h
            .curl(2, &[http, "-u", &user, &h.url("api.example.test", "/echo")])
            .await;
        assert_eq!(out.status, 200, "{out:?}");
        let expected = format!("Basic {}", STANDARD.encode(format!("user:{VALUE}")));
        assert_eq!(
            h.origin.last().header("authorization").as_deref(),
            Some(expected.as_str())
        );
        assert!(!reveals_value(out.body.as_bytes()), "{http}: {}", out.body);
    }
}

fn trailer_reply(_path: &str, request: &HeaderMap) -> Response<HostileBody> {
    let value = request
        .get("x-api-key")
        .cloned()
        .unwrap_or(HeaderValue::from_static(""));
    let (sender, body) = channel_body();
    sender
        .send(Frame::data(Bytes::from_static(b"body")))
        .unwrap();
    let mut trailers = HeaderMap::new();
    trailers.insert("x-echo", value);
    sender.send(Frame::trailers(trailers)).unwrap();
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert("trailer", HeaderValue::from_static("x-echo"));
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailers_are_scrubbed() {
    for (express, http2) in MODES {
        let s = setup(express, trailer_reply).await;
        let mut client = s.client(http2).await;
        let request = s
            .request(http2, "/trailers")
            .header("te", "trailers")
            .header("x-api-key", token(1).as_str())
            .body(body(""))
            .unwrap();
        let response = client.send_raw(request).await.unwrap();
        let case = format!("express={express} http2={http2}");
        assert_eq!(response.status(), 200, "{case}");
        let collected = response.into_body().collect().await.unwrap();
        if let Some(trailers) = collected.trailers() {
            for value in trailers.values() {
                assert!(
                    !contains(value.as_bytes(), VALUE.as_bytes()),
                    "{case}: trailer leaked"
                );
            }
        }
        assert_eq!(collected.to_bytes(), Bytes::from_static(b"body"), "{case}");
    }
}

fn reason_reply(_path: &str, request: &HeaderMap) -> Response<HostileBody> {
    let value = request
        .get("x-api-key")
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let mut reason = b"OK ".to_vec();
    reason.extend_from_slice(&value);
    let mut response = Response::new(full("reason"));
    if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason) {
        response.extensions_mut().insert(phrase);
    }
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reason_phrases_are_scrubbed() {
    for express in [true, false] {
        let s = setup(express, reason_reply).await;
        let mut client = s.client(false).await;
        let request = s
            .request(false, "/reason")
            .header("x-api-key", token(1).as_str())
            .body(body(""))
            .unwrap();
        let response = client.send_raw(request).await.unwrap();
        assert_eq!(response.status(), 200);
        if let Some(reason) = response.extensions().get::<hyper::ext::ReasonPhrase>() {
            assert!(
                !contains(reason.as_bytes(), VALUE.as_bytes()),
                "express={express}: the reason phrase carried the value"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_coding_other_than_chunked_is_refused() {
    // gzip as a *transfer* coding: the body would reach the sandbox still compressed, with the
    // header saying so dropped as hop-by-hop.
    let coded = gzip(format!("echo:{VALUE}").as_bytes());
    let mut answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n".to_vec();
    answer.extend_from_slice(format!("{:x}\r\n", coded.len()).as_bytes());
    answer.extend_from_slice(&coded);
    answer.extend_from_slice(b"\r\n0\r\n\r\n");
    for (express, http2) in MODES {
        let h = Harness::start_with(Options {
            express,
            ..Options::default()
        })
        .await;
        let origin = crate::support::raw_origin::start_raw_origin(
            h.origin.tls_config.clone(),
            answer.clone(),
        )
        .await;
        let authority = format!("api.example.test:{}", origin.port());
        h.sandbox(
            2,
            std::slice::from_ref(&authority),
            &[("KEY", 1, VALUE, &[])],
        );
        let mut client = Client::through(
            sandbox_ip(2),
            h.proxy.explicit_addr(),
            &authority,
            h.proxy.ca_cert_pem(),
            http2,
        )
        .await;
        let uri = if http2 {
            format!("https://{authority}/te")
        } else {
            "/te".to_owned()
        };
        let request = Request::get(uri)
            .header("host", authority.as_str())
            .body(body(""))
            .unwrap();
        let (status, _, answer) = client.send(request).await;
        let case = format!("express={express} http2={http2}");
        assert_eq!(status, 502, "{case}");
        assert!(
            String::from_utf8_lossy(&answer).contains("transfer-coding"),
            "{case}"
        );
        assert!(!reveals_value(&answer), "{case}");
    }
}
