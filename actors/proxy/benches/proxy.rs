//! Criterion benches: the streaming replacer on bodies without a token (1 KiB and 64 KiB; goals
//! ≥ 5 GB/s and ≥ 12 GB/s), with one token per 64 KiB, the response scrubber with every encoded
//! form of three values (goal ≥ 5 GB/s on 64 KiB identity bodies) and on a gzip body, a 64 MiB
//! response through the response transform as identity and as gzip (issue 19), and a
//! leaf-cache hit (goal ≤ 1 µs). Run: `cargo bench -p osb-proxy --bench proxy`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use osb_proto::{SandboxId, SealedToken};
use osb_proxy::cert_cache::LeafCache;
use osb_proxy::encoding::{Coding, Decoder};
use osb_proxy::replacer::{StreamReplacer, TokenResolver};
use osb_proxy::scrubber::{ScrubTable, StreamScrubber};
use osb_proxy::session::{SealedSecret, Session};
use osb_proxy::{ProxyMetrics, Refusal, SecretValue};

struct MapResolver(HashMap<SealedToken, Vec<u8>>);

impl TokenResolver for MapResolver {
    fn resolve(&mut self, token: &SealedToken) -> Result<&[u8], Refusal> {
        self.0
            .get(token)
            .map(Vec::as_slice)
            .ok_or_else(|| Refusal::unknown_token("bench"))
    }
}

fn body(len: usize) -> Bytes {
    // JSON-ish text with underscores and `o`s so the prefix search sees near-misses.
    let pattern = b"{\"model\":\"gpt_4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hello osb world\"}]} ";
    Bytes::from(
        pattern
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect::<Vec<u8>>(),
    )
}

fn replacer(c: &mut Criterion) {
    let token = SealedToken::from_random_bytes([7; 16]);
    let mut resolver = MapResolver(HashMap::from([(
        token,
        b"sk-live-0123456789abcdef0123456789".to_vec(),
    )]));
    let mut group = c.benchmark_group("replacer");
    for (name, len) in [("no_token_1KiB", 1024), ("no_token_64KiB", 64 * 1024)] {
        let chunk = body(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| {
            let mut stream = StreamReplacer::new();
            b.iter(|| black_box(stream.feed(black_box(chunk.clone()), &mut resolver)))
        });
    }
    let mut with_token = body(64 * 1024).to_vec();
    with_token[30_000..30_043].copy_from_slice(token.as_bytes());
    let with_token = Bytes::from(with_token);
    group.throughput(Throughput::Bytes(with_token.len() as u64));
    group.bench_function("one_token_64KiB", |b| {
        let mut stream = StreamReplacer::new();
        b.iter(|| black_box(stream.feed(black_box(with_token.clone()), &mut resolver)))
    });
    group.finish();
}

/// The three secrets the scrubbing benches hold a session for.
fn three_secrets() -> impl Iterator<Item = Arc<SealedSecret>> {
    (0..3u8).map(|i| {
        Arc::new(SealedSecret {
            name: format!("S{i}"),
            token: SealedToken::from_random_bytes([i; 16]),
            value: SecretValue::new(format!("sk-live-value-number-{i}-0123456789").into_bytes()),
            allowed_hosts: vec![],
            version: 0,
        })
    })
}

fn scrubber(c: &mut Criterion) {
    let secrets = three_secrets();
    let session = Session::new(
        SandboxId::new(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        vec![],
        secrets,
    );
    let Some(table) = ScrubTable::for_session(&session) else {
        return;
    };
    let chunk = body(64 * 1024);
    let mut group = c.benchmark_group("scrubber");
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    // Each value is scrubbed in all its forms (raw, base64 ×3 alignments ×2 alphabets, JSON,
    // percent): the table below holds every one of them.
    group.bench_function(
        format!("three_values_{}_forms_64KiB", table.form_count()),
        |b| {
            let mut stream = StreamScrubber::new(table.clone());
            b.iter(|| black_box(stream.feed(black_box(&chunk))))
        },
    );
    // A gzip response: decoded in bounded steps, then scrubbed (throughput of decoded bytes).
    let compressed = {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = encoder.write_all(&chunk);
        encoder.finish().unwrap_or_default()
    };
    group.bench_function("three_values_gzip_64KiB", |b| {
        b.iter(|| {
            let Some(mut decoder) = Decoder::for_coding(Coding::Gzip) else {
                return 0;
            };
            let mut stream = StreamScrubber::new(table.clone());
            let mut total = 0;
            if let Ok(first) = decoder.push(black_box(&compressed)) {
                total += stream.feed(&first).len();
            }
            while decoder.has_input() {
                match decoder.step() {
                    Ok(step) => total += stream.feed(&step).len(),
                    Err(_) => break,
                }
            }
            if let Ok(rest) = decoder.finish() {
                total += stream.feed(&rest).len();
            }
            total + stream.finish().len()
        })
    });
    group.finish();
}

/// Base64 text of pseudo-random bytes, like the peer kit's `/bytes/N` (no `_`, so never a token).
fn random_text(len: usize) -> Vec<u8> {
    use base64::Engine as _;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let raw: Vec<u8> = (0..len * 3 / 4 + 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut text = base64::engine::general_purpose::STANDARD
        .encode(raw)
        .into_bytes();
    text.truncate(len);
    text
}

/// Runs a whole response through the proxy's response transform (decode when coded, then
/// constant-shape scrubbing) in 64 KiB reads, as the relay does; returns the bytes handed out.
fn relay_response(table: &ScrubTable, coding: Coding, wire: &[Bytes]) -> usize {
    use osb_proxy::transform::FrameTransform as _;
    let mut transform = osb_proxy::body::Scrubbing::new(
        table.clone(),
        Decoder::for_coding(coding),
        Arc::new(ProxyMetrics::default()),
    );
    let mut total = 0;
    for read in wire {
        total += transform.data(read.clone()).map_or(0, |out| out.len());
        while let Ok(Some(step)) = transform.more() {
            total += step.len();
        }
    }
    total + transform.finish().map_or(0, |out| out.len())
}

/// Must-hold 4 of issue 19: a 64 MiB response, identity beside gzip, per decoded byte.
fn response_64mib(c: &mut Criterion) {
    let secrets = three_secrets();
    let session = Session::new(
        SandboxId::new(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        vec![],
        secrets,
    );
    let Some(table) = ScrubTable::for_session(&session) else {
        return;
    };
    let body = random_text(64 * 1024 * 1024);
    let reads = |bytes: &[u8]| -> Vec<Bytes> {
        bytes
            .chunks(64 * 1024)
            .map(Bytes::copy_from_slice)
            .collect()
    };
    let identity = reads(&body);
    let gzip = {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = encoder.write_all(&body);
        reads(&encoder.finish().unwrap_or_default())
    };
    let mut group = c.benchmark_group("response_64MiB");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("identity_scrubbed", |b| {
        b.iter(|| black_box(relay_response(&table, Coding::Identity, &identity)))
    });
    group.bench_function("gzip_decoded_and_scrubbed", |b| {
        b.iter(|| black_box(relay_response(&table, Coding::Gzip, &gzip)))
    });
    group.finish();
}

fn leaf_cache(c: &mut Criterion) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(ca) =
        osb_proxy::ca::CertificateAuthority::load_or_create(dir.path(), Duration::from_secs(86400))
    else {
        return;
    };
    let cache = LeafCache::new(
        Arc::new(ca),
        Duration::from_secs(3600),
        Arc::new(ProxyMetrics::default()),
    );
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    if runtime
        .block_on(cache.server_config("api.example.test"))
        .is_err()
    {
        return;
    }
    c.bench_function("leaf_cache_hit", |b| {
        b.iter(|| black_box(cache.cached(black_box("api.example.test"))))
    });
    c.bench_function("leaf_cache_hit_async", |b| {
        b.iter(|| black_box(runtime.block_on(cache.server_config(black_box("api.example.test")))))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = replacer, scrubber, response_64mib, leaf_cache
}
criterion_main!(benches);
