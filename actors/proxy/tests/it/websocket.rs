//! WebSocket frames are an echo channel like any other (issue 11 item 3): after the upgrade the
//! proxy reads frames both ways — tokens in the sandbox's frames (masked, fragmented, split
//! across frames) are substituted toward hosts the secret allows and refused elsewhere, values in
//! the origin's frames (text, binary, control, split across fragments) become tokens. Compression
//! extensions are not negotiated (they would hide echoes), and WebSocket over HTTP/2 (RFC 8441) is
//! not offered: a CONNECT inside a tunnel gets a clear refusal.

use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::support::client::{body, Client};
use crate::support::harness::{sandbox_ip, token, Harness};
use crate::support::hostile_origin::{full, start_hostile_origin, Handler};
use crate::support::ws::{self, frame, read_frame, read_message};

const VALUE: &str = "ws-secret-value-0123456789abcdef";
const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

#[derive(Default)]
struct Seen {
    messages: Vec<Vec<u8>>,
    masked: Vec<bool>,
    upgrade_headers: Vec<String>,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// A WebSocket origin: records the first message it receives, then sends it back split into
/// three fragments (cut inside the value), a binary frame and a ping carrying the value.
fn ws_origin(seen: Arc<Mutex<Seen>>) -> Handler {
    Arc::new(move |mut request: Request<hyper::body::Incoming>| {
        let seen = Arc::clone(&seen);
        Box::pin(async move {
            let headers = request
                .headers()
                .iter()
                .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v.as_bytes())))
                .collect::<Vec<_>>();
            seen.lock().unwrap().upgrade_headers = headers;
            let upgrade = hyper::upgrade::on(&mut request);
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let mut io = TokioIo::new(upgraded);
                let mut controls = Vec::new();
                let mut first_masked = None;
                let message = loop {
                    let Ok(read) = read_frame(&mut io).await else {
                        return;
                    };
                    first_masked.get_or_insert(read.2);
                    seen.lock().unwrap().masked.push(read.2);
                    if read.1 >= 0x8 {
                        controls.push(read);
                        continue;
                    }
                    let mut payload = read.3;
                    let mut fin = read.0;
                    while !fin {
                        let Ok(next) = read_frame(&mut io).await else {
                            return;
                        };
                        seen.lock().unwrap().masked.push(next.2);
                        if next.1 >= 0x8 {
                            controls.push(next);
                            continue;
                        }
                        payload.extend_from_slice(&next.3);
                        fin = next.0;
                    }
                    break payload;
                };
                seen.lock().unwrap().messages.push(message.clone());
                let third = message.len() / 3;
                let at = contains(&message, VALUE.as_bytes())
                    .then(|| {
                        message
                            .windows(VALUE.len())
                            .position(|w| w == VALUE.as_bytes())
                    })
                    .flatten()
                    .map_or(third, |position| position + VALUE.len() / 2);
                let mut out = Vec::new();
                out.extend(frame(false, ws::TEXT, None, &message[..at]));
                out.extend(frame(false, ws::CONTINUATION, None, &message[at..at + 3]));
                out.extend(frame(true, ws::CONTINUATION, None, &message[at + 3..]));
                out.extend(frame(true, ws::PING, None, VALUE.as_bytes()));
                let mut binary = b"bin:".to_vec();
                binary.extend_from_slice(VALUE.as_bytes());
                out.extend(frame(true, ws::BINARY, None, &binary));
                let _ = io.write_all(&out).await;
                let _ = io.flush().await;
                // Keep the connection until the proxy closes it.
                let _ = read_frame(&mut io).await;
            });
            let mut response = Response::new(full(""));
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            response
                .headers_mut()
                .insert("upgrade", http::HeaderValue::from_static("websocket"));
            response
                .headers_mut()
                .insert("connection", http::HeaderValue::from_static("upgrade"));
            response
        })
    })
}

async fn upgraded_client(h: &Harness, authority: &str) -> TokioIo<hyper::upgrade::Upgraded> {
    let mut client = Client::through(
        sandbox_ip(2),
        h.proxy.explicit_addr(),
        authority,
        h.proxy.ca_cert_pem(),
        false,
    )
    .await;
    let request = Request::get("/ws")
        .header("host", authority)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header(
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        )
        .body(body(""))
        .unwrap();
    let response = client.send_raw(request).await.unwrap();
    assert_eq!(response.status(), 101);
    TokioIo::new(hyper::upgrade::on(response).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_substituted_toward_the_host_and_scrubbed_back() {
    let h = Harness::start().await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let origin =
        start_hostile_origin(h.origin.tls_config.clone(), ws_origin(Arc::clone(&seen))).await;
    let authority = format!("api.example.test:{}", origin.port());
    h.sandbox(
        2,
        std::slice::from_ref(&authority),
        &[("WS_KEY", 1, VALUE, &[])],
    );
    let mut io = upgraded_client(&h, &authority).await;
    let t = token(1);
    let text = format!("hello {t} bye");
    let cut = "hello ".len() + 20;
    let mut wire = frame(false, ws::TEXT, MASK, &text.as_bytes()[..cut]);
    wire.extend(frame(true, ws::PING, MASK, b"keepalive"));
    wire.extend(frame(true, ws::CONTINUATION, MASK, &text.as_bytes()[cut..]));
    io.write_all(&wire).await.unwrap();
    io.flush().await.unwrap();

    let mut controls = Vec::new();
    let (opcode, echoed) = read_message(&mut io, &mut controls).await.unwrap();
    assert_eq!(opcode, ws::TEXT);
    assert_eq!(
        String::from_utf8_lossy(&echoed),
        text,
        "the echo comes back with the token"
    );
    let mut more = Vec::new();
    let (opcode, binary) = read_message(&mut io, &mut more).await.unwrap();
    assert_eq!(opcode, ws::BINARY);
    assert_eq!(binary, format!("bin:{t}").into_bytes());
    controls.extend(more);
    for control in &controls {
        assert!(
            !contains(&control.3, VALUE.as_bytes()),
            "a control frame leaked the value"
        );
        assert!(!control.2, "frames toward the sandbox are not masked");
    }
    assert!(
        controls
            .iter()
            .any(|c| c.1 == ws::PING && c.3 == t.as_bytes()),
        "{controls:?}"
    );

    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.messages,
        vec![format!("hello {VALUE} bye").into_bytes()]
    );
    assert!(
        seen.masked.iter().all(|masked| *masked),
        "frames toward the origin are masked"
    );
    assert!(
        !seen
            .upgrade_headers
            .iter()
            .any(|h| h.starts_with("sec-websocket-extensions")),
        "compression is not negotiated: {:?}",
        seen.upgrade_headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_a_frame_toward_a_host_it_may_not_reach_closes_the_connection() {
    let h = Harness::start().await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let origin =
        start_hostile_origin(h.origin.tls_config.clone(), ws_origin(Arc::clone(&seen))).await;
    let authority = format!("other.example.test:{}", origin.port());
    let pinned = vec![h.at("api.example.test")];
    h.sandbox(
        2,
        std::slice::from_ref(&authority),
        &[("WS_KEY", 1, VALUE, &pinned)],
    );
    let mut io = upgraded_client(&h, &authority).await;
    let text = format!("steal {}", token(1));
    io.write_all(&frame(true, ws::TEXT, MASK, text.as_bytes()))
        .await
        .unwrap();
    io.flush().await.unwrap();
    let mut controls = Vec::new();
    let outcome = read_message(&mut io, &mut controls).await;
    assert!(
        outcome.is_err(),
        "the proxy must close, not relay: {outcome:?}"
    );
    if let Some(close) = controls.iter().find(|c| c.1 == ws::CLOSE) {
        assert_eq!(&close.3[..2], &1008u16.to_be_bytes(), "policy violation");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let seen = seen.lock().unwrap();
    for message in &seen.messages {
        assert!(!contains(message, VALUE.as_bytes()) && !contains(message, token(1).as_bytes()));
    }
    let blocked = format!("{:?}", h.events());
    assert!(blocked.contains("SecretNotAllowedForHost"), "{blocked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_over_http2_is_not_offered_and_connect_inside_a_tunnel_is_refused() {
    let h = Harness::start().await;
    h.sandbox(2, &[h.at("api.example.test")], &[("WS_KEY", 1, VALUE, &[])]);
    let stream = crate::support::client::connect_tunnel(
        sandbox_ip(2),
        h.proxy.explicit_addr(),
        &h.at("api.example.test"),
    )
    .await
    .unwrap();
    let connector = tokio_rustls::TlsConnector::from(crate::support::client::tls_config(
        h.proxy.ca_cert_pem(),
        &[b"h2"],
    ));
    let tls = connector
        .connect(
            rustls::pki_types::ServerName::try_from("api.example.test").unwrap(),
            stream,
        )
        .await
        .unwrap();
    let (sender, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let mut sender = sender.ready().await.unwrap();
    assert!(
        !sender.is_extended_connect_protocol_enabled(),
        "the proxy must not offer RFC 8441 extended CONNECT"
    );
    let request = Request::connect(h.at("api.example.test")).body(()).unwrap();
    let (response, _stream) = sender.send_request(request, false).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 400);
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        text.extend_from_slice(&chunk.unwrap());
    }
    let reason: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(reason["code"], "invalid_input");
    assert!(reason["error"].as_str().unwrap().contains("CONNECT"));
    assert_eq!(h.origin.count(), 0);
}
