//! Lingering close (ADR 0114): a request refused before its body was read is answered, and the
//! proxy then reads and discards what the client still sends (bounded in bytes and time) before
//! it closes, on both front ends (express lane and hyper). A client still writing its body reads
//! the whole refusal instead of a broken pipe or a reset; the discarded bytes never reach the
//! origin, an event or a log; a lingering connection keeps its slot, and the bounds hold.

use std::time::Duration;

use osb_proxy::{Limits, OversizedBody, ProxyEvent};

use crate::support::client::connect_tunnel;
use crate::support::harness::{captured_logs, sandbox_ip, token, Harness, Options};
use crate::support::uploader::{transparent, tunnel, upload, Pace, Reads, Upload};

const MIB: usize = 1024 * 1024;

/// Why the proxy refuses the request before reading its body.
#[derive(Debug, Clone, Copy)]
enum Refused {
    /// 429: the sandbox's whole-body buffer budget is spent (the body would be buffered).
    BufferBudget,
    /// 403: a token of another sandbox in the path (the body would stream).
    ForeignToken,
    /// 413: a body over the buffer limit with oversized bodies refused (hyper answers).
    TooLarge,
}

impl Refused {
    fn options(self, express: bool, body_len: usize) -> Options {
        match self {
            Refused::BufferBudget => Options {
                express,
                max_buffered_body: body_len + MIB,
                limits: Some(Limits {
                    max_buffered_bytes_per_sandbox: 64,
                    ..Limits::default()
                }),
                ..Options::default()
            },
            Refused::ForeignToken => Options {
                express,
                max_buffered_body: 64 * 1024,
                oversized_body: OversizedBody::Rechunk,
                ..Options::default()
            },
            Refused::TooLarge => Options {
                express,
                max_buffered_body: 64 * 1024,
                oversized_body: OversizedBody::Refuse,
                ..Options::default()
            },
        }
    }

    fn expected(self) -> (u16, &'static str) {
        match self {
            Refused::BufferBudget => (429, "rate_limited"),
            Refused::ForeignToken => (403, "unknown_token"),
            Refused::TooLarge => (413, "payload_too_large"),
        }
    }

    fn path(self) -> String {
        match self {
            Refused::ForeignToken => format!("/sink?k={}", token(9)),
            _ => "/sink".to_owned(),
        }
    }
}

async fn harness(options: Options) -> Harness {
    let h = Harness::start_with(options).await;
    let allow = vec![h.at("api.example.test")];
    h.sandbox(2, &allow, &[("KEY", 1, "lingering-secret-value", &[])]);
    h.sandbox(3, &allow, &[("OTHER", 9, "other-sandbox-value", &[])]);
    h
}

fn post_head(h: &Harness, path: &str, body_len: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {body_len}\r\n\r\n",
        h.at("api.example.test")
    )
}

fn assert_refused(seen: &Upload, refused: Refused, express: bool) {
    let (status, code) = refused.expected();
    let answer = seen
        .answer
        .as_ref()
        .unwrap_or_else(|| panic!("{refused:?} express={express}: no whole answer: {seen:?}"));
    assert_eq!(
        answer.status, status,
        "{refused:?} express={express}: {answer:?}"
    );
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{refused:?} express={express}: {answer:?}"
    );
    assert_eq!(answer.json()["code"], code, "{refused:?} express={express}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_writing_a_large_body_after_a_refused_head_reads_the_whole_refusal() {
    let body_len = 4 * MIB;
    let pace = Pace {
        chunk: 64 * 1024,
        pause: Duration::from_millis(2),
        reads: Reads::WhileWriting,
    };
    for refused in [
        Refused::BufferBudget,
        Refused::ForeignToken,
        Refused::TooLarge,
    ] {
        for express in [true, false] {
            let h = harness(refused.options(express, body_len)).await;
            let tls = tunnel(&h, 2, "api.example.test").await;
            let head = post_head(&h, &refused.path(), body_len);
            let seen = upload(tls, head, body_len, b"x", pace).await;
            assert_refused(&seen, refused, express);
            assert_eq!(h.origin.count(), 0, "{refused:?} express={express}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_writes_its_whole_body_before_reading_gets_the_refusal_too() {
    // Slowly, so the proxy has long decided before the body is written; below the linger's
    // byte bound: every write succeeds, then the answer is there.
    let body_len = 768 * 1024;
    let pace = Pace {
        chunk: 16 * 1024,
        pause: Duration::from_millis(1),
        reads: Reads::AfterWriting,
    };
    for refused in [Refused::BufferBudget, Refused::ForeignToken] {
        for express in [true, false] {
            let h = harness(refused.options(express, body_len)).await;
            // Both doors: a CONNECT tunnel, and a redirected connection (TLS right on the socket).
            for via_tunnel in [true, false] {
                let tls = if via_tunnel {
                    tunnel(&h, 2, "api.example.test").await
                } else {
                    transparent(&h, 2, "api.example.test").await
                };
                let head = post_head(&h, &refused.path(), body_len);
                let seen = upload(tls, head, body_len, b"x", pace).await;
                assert_eq!(
                    seen.write_error, None,
                    "{refused:?} express={express} tunnel={via_tunnel}: the proxy reset a client still writing"
                );
                assert_eq!(seen.written, body_len);
                assert_refused(&seen, refused, express);
            }
            assert_eq!(h.origin.count(), 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_discarded_while_lingering_never_reach_the_origin_an_event_or_a_log() {
    const CANARY: &str = "linger-canary-5d1e0c7a";
    let body_len = 512 * 1024;
    // The body carries a valid token of the sandbox (allowed for this host) and a canary.
    let fill = format!("{CANARY}&k={}&", token(1));
    for express in [true, false] {
        let h = harness(Refused::BufferBudget.options(express, body_len)).await;
        let tls = tunnel(&h, 2, "api.example.test").await;
        let head = post_head(&h, "/sink", body_len);
        let pace = Pace {
            chunk: 16 * 1024,
            pause: Duration::from_millis(1),
            reads: Reads::AfterWriting,
        };
        let seen = upload(tls, head, body_len, fill.as_bytes(), pace).await;
        assert_refused(&seen, Refused::BufferBudget, express);
        assert_eq!(h.origin.count(), 0, "nothing went upstream");
        assert_eq!(
            h.proxy.metrics().substitutions(),
            0,
            "no token was replaced"
        );
        let events = h.events();
        assert!(
            !events
                .iter()
                .any(|event| matches!(event, ProxyEvent::SecretUsed { .. })),
            "{events:?}"
        );
        assert!(!format!("{events:?}").contains(CANARY));
        let logs = String::from_utf8_lossy(&captured_logs()).into_owned();
        assert!(!logs.contains(CANARY), "a discarded byte reached the logs");
    }
}

/// Waits until the proxy holds `open` connections (or 5 s pass); how many it holds.
async fn settle_at(h: &Harness, open: usize) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while h.proxy.open_connections() != open && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.proxy.open_connections()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lingering_is_bounded_in_time_and_bytes_and_keeps_the_connection_slot() {
    for express in [true, false] {
        let mut options = Refused::BufferBudget.options(express, MIB);
        if let Some(limits) = options.limits.as_mut() {
            limits.linger_time = Duration::from_millis(1500);
            limits.linger_bytes = 256 * 1024;
        }
        let h = harness(options).await;
        // A client that trickles its body and never closes: cut by time.
        let tls = tunnel(&h, 2, "api.example.test").await;
        let head = post_head(&h, "/sink", MIB);
        let trickle = Pace {
            chunk: 1024,
            pause: Duration::from_millis(50),
            reads: Reads::WhileWriting,
        };
        let trickling = tokio::spawn(upload(tls, head, MIB, b"t", trickle));
        // The refusal is out before the body; the socket lingers and still holds its slot.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while h.proxy.metrics().blocks(osb_proto::ErrorCode::RateLimited) == 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(h.proxy.open_connections(), 1, "express={express}");
        let seen = trickling.await.unwrap();
        assert_refused(&seen, Refused::BufferBudget, express);
        assert!(
            seen.write_error.is_some(),
            "the linger ended before the body"
        );
        assert_eq!(settle_at(&h, 0).await, 0, "the slot is given back");
        assert_eq!(
            h.proxy.metrics().lingering_cut(),
            1,
            "cut by its time bound"
        );

        // A client that floods, writing blindly far past its announced body and more than the
        // socket buffers of both ends hold: cut by bytes, then reset.
        let flood = 32 * MIB;
        let tls = tunnel(&h, 2, "api.example.test").await;
        let head = post_head(&h, "/sink", MIB);
        let blind = Pace {
            chunk: 64 * 1024,
            pause: Duration::ZERO,
            reads: Reads::AfterWriting,
        };
        let seen = upload(tls, head, flood, b"f", blind).await;
        assert!(seen.write_error.is_some(), "{seen:?}");
        assert!(seen.written < flood);
        assert_eq!(settle_at(&h, 0).await, 0);
        let metrics = h.proxy.metrics();
        assert_eq!(metrics.lingering_cut(), 2, "cut by its byte bound");
        assert!(
            metrics.lingering_discarded_bytes() <= 2 * 256 * 1024,
            "{}",
            h.proxy.render_metrics()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn established_tunnels_count_against_the_sandbox_connection_cap() {
    let h = harness(Options {
        limits: Some(Limits {
            max_connections_per_sandbox: 3,
            ..Limits::default()
        }),
        ..Options::default()
    })
    .await;
    let explicit = h.proxy.explicit_addr();
    let mut tunnels = Vec::new();
    for _ in 0..3 {
        tunnels.push(tunnel(&h, 2, "api.example.test").await);
    }
    let (status, text) = connect_tunnel(sandbox_ip(2), explicit, &h.at("api.example.test"))
        .await
        .expect_err("a fourth connection is over the cap while three tunnels are open");
    assert_eq!(status, 429, "{text}");
    tunnels.pop();
    assert_eq!(settle_at(&h, 2).await, 2);
    assert!(
        connect_tunnel(sandbox_ip(2), explicit, &h.at("api.example.test"))
            .await
            .is_ok(),
        "a closed tunnel gives its slot back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_streamed_body_is_never_read_as_the_next_request() {
    // The body of a request refused before it was read is made of requests the policy would
    // admit: once the connection closes after the refusal, none of them may reach the origin.
    let body_len = 256 * 1024;
    for express in [true, false] {
        let h = harness(Refused::ForeignToken.options(express, body_len)).await;
        let smuggled = format!(
            "GET /smuggled HTTP/1.1\r\nHost: {}\r\n\r\n",
            h.at("api.example.test")
        );
        let tls = tunnel(&h, 2, "api.example.test").await;
        let head = post_head(&h, &Refused::ForeignToken.path(), body_len);
        let pace = Pace {
            chunk: 16 * 1024,
            pause: Duration::from_millis(1),
            reads: Reads::AfterWriting,
        };
        let seen = upload(tls, head, body_len, smuggled.as_bytes(), pace).await;
        assert_refused(&seen, Refused::ForeignToken, express);
        assert_eq!(seen.write_error, None, "express={express}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            h.origin.count(),
            0,
            "express={express}: a body byte became a request"
        );
    }
}
