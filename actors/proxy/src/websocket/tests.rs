//! Unit tests of the frame relay over in-memory streams: a token split across fragments (with a
//! ping in between) arrives substituted and re-masked, a value split across frames comes back
//! scrubbed, and a token the secret may not take closes the sandbox side with 1008. The proptest
//! twin of the fuzz target feeds arbitrary bytes both ways and checks the relay never panics and
//! never passes a raw value to the sandbox.

use std::net::{IpAddr, Ipv4Addr};

use osb_proto::{HostPattern, SandboxId, SealedToken};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::events::NullSink;
use crate::policy::{Scheme, SealingPolicy, Target};
use crate::secret_value::SecretValue;
use crate::session::{SealedSecret, Session};

const VALUE: &[u8] = b"ws-unit-secret-value-42";

fn token(byte: u8) -> SealedToken {
    SealedToken::from_random_bytes([byte; 16])
}

fn relay_for(host: &str) -> Relay {
    let secret = Arc::new(SealedSecret {
        name: "KEY".into(),
        token: token(1),
        value: SecretValue::new(VALUE.to_vec()),
        allowed_hosts: vec![HostPattern::parse("api.example.test").unwrap()],
        version: 0,
    });
    let session = Arc::new(Session::new(
        SandboxId::new(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        vec![HostPattern::parse("*.example.test").unwrap()],
        [secret],
    ));
    let target = Target {
        scheme: Scheme::Https,
        host: host.into(),
        port: 443,
    };
    let metrics = Arc::new(ProxyMetrics::default());
    Relay {
        resolver: RequestSubstitution::new(SealingPolicy::default(), Arc::clone(&session), target),
        table: session.scrub_table().cloned(),
        ledger: RequestLedger::new(
            Arc::new(NullSink),
            Arc::clone(&metrics),
            session.sandbox_id,
            session.source_ip,
            host.into(),
            "GET".into(),
            "/ws".into(),
        ),
        metrics,
        idle_timeout: Duration::from_secs(5),
        host: host.into(),
    }
}

/// (sandbox side, origin side) with the relay running between them.
fn running(host: &str) -> (DuplexStream, DuplexStream) {
    let (sandbox, proxy_client) = tokio::io::duplex(64 * 1024);
    let (proxy_origin, origin) = tokio::io::duplex(64 * 1024);
    let mut relay = relay_for(host);
    tokio::spawn(async move { relay.relay(proxy_client, proxy_origin).await });
    (sandbox, origin)
}

async fn read_frame<S: AsyncReadExt + Unpin>(io: &mut S) -> (FrameHead, Vec<u8>) {
    let mut buffer = Vec::new();
    loop {
        if let Some(head) = parse_head(&buffer).unwrap() {
            let total = head.head_len + head.length as usize;
            let mut rest = vec![0u8; total - buffer.len()];
            io.read_exact(&mut rest).await.unwrap();
            buffer.extend_from_slice(&rest);
            let mut payload = buffer[head.head_len..total].to_vec();
            if let Some(key) = head.mask {
                unmask(&mut payload, key, 0);
            }
            return (head, payload);
        }
        let mut byte = [0u8; 1];
        assert_eq!(
            io.read(&mut byte).await.unwrap(),
            1,
            "stream ended before a frame"
        );
        buffer.push(byte[0]);
    }
}

async fn read_message<S: AsyncReadExt + Unpin>(io: &mut S) -> Vec<u8> {
    let mut message = Vec::new();
    loop {
        let (head, payload) = read_frame(io).await;
        if head.is_control() {
            continue;
        }
        message.extend_from_slice(&payload);
        if head.fin {
            return message;
        }
    }
}

#[tokio::test]
async fn tokens_are_substituted_toward_the_origin_and_values_scrubbed_back() {
    let (mut sandbox, mut origin) = running("api.example.test");
    let text = format!("say {} now", token(1));
    let (left, right) = text.as_bytes().split_at(15);
    let mut wire = Vec::new();
    write_frame(&mut wire, false, frame::TEXT, Some([1, 2, 3, 4]), left);
    write_frame(&mut wire, true, frame::PING, Some([5, 6, 7, 8]), b"hi");
    write_frame(
        &mut wire,
        true,
        frame::CONTINUATION,
        Some([9, 9, 9, 9]),
        right,
    );
    sandbox.write_all(&wire).await.unwrap();
    let received = read_message(&mut origin).await;
    let mut expected = b"say ".to_vec();
    expected.extend_from_slice(VALUE);
    expected.extend_from_slice(b" now");
    assert_eq!(received, expected);

    let mut back = Vec::new();
    write_frame(&mut back, false, frame::BINARY, None, &VALUE[..5]);
    write_frame(&mut back, true, frame::CONTINUATION, None, &VALUE[5..]);
    origin.write_all(&back).await.unwrap();
    let echoed = read_message(&mut sandbox).await;
    assert_eq!(echoed, token(1).as_bytes());
}

#[tokio::test]
async fn a_token_toward_a_host_it_may_not_reach_closes_with_a_policy_violation() {
    let (mut sandbox, mut origin) = running("other.example.test");
    let mut wire = Vec::new();
    write_frame(
        &mut wire,
        true,
        frame::TEXT,
        Some([1, 2, 3, 4]),
        token(1).as_bytes(),
    );
    sandbox.write_all(&wire).await.unwrap();
    let (head, payload) = read_frame(&mut sandbox).await;
    assert_eq!(head.opcode, frame::CLOSE);
    assert_eq!(&payload[..2], &POLICY_VIOLATION.to_be_bytes());
    let (head, _) = read_frame(&mut origin).await;
    assert_eq!(
        head.opcode,
        frame::CLOSE,
        "the origin sees only a close, never the token"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Arbitrary bytes from the origin never make the relay panic, and a frame carrying the
    /// value never reaches the sandbox raw.
    #[test]
    fn arbitrary_origin_bytes_never_pass_a_value(noise in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..40) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let (mut sandbox, mut origin) = running("api.example.test");
            let mut wire = Vec::new();
            let cut = cut.min(VALUE.len());
            write_frame(&mut wire, false, frame::TEXT, None, &VALUE[..cut]);
            write_frame(&mut wire, true, frame::CONTINUATION, None, &VALUE[cut..]);
            wire.extend_from_slice(&noise);
            let _ = origin.write_all(&wire).await;
            drop(origin);
            let mut seen = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), sandbox.read_to_end(&mut seen)).await;
            assert!(!seen.windows(VALUE.len()).any(|w| w == VALUE));
        });
    }
}
