//! Bounded memory under large bodies (issue 19, must-hold 2): one sandbox uploads and downloads
//! large bodies through an intercepted host with token substitution and response scrubbing on,
//! with `Content-Length` and chunked framing, on both front ends (HTTP/1.1 on the express lane,
//! HTTP/2 on hyper), and the proxy's peak resident memory (`VmHWM`) stays within [`BOUND`] of
//! what it was after a few small requests, whatever the body size.
//!
//! `VmHWM` is per process, so the proxy runs alone in a child process: the `bench_proxy` example
//! (built next to this test binary by `cargo nextest run` / `cargo test`), which is the bench
//! kit's proxy with the product's allocator. Each body is 256 MiB by default, so the sandbox
//! moves 1 GiB up (four uploads) and 1 GiB down (four downloads); `OSB_MEMORY_TEST_MIB` sets the
//! size of each body (the figures in `docs/benchmarks.md` also come from 1 GiB bodies). Every
//! body's byte count and substitution count are checked, so a proxy that dropped, mangled or
//! skipped data fails here too.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Frame;

use crate::support::client::{Client, ClientBody};
use crate::support::harness::sandbox_ip;
use crate::support::hostile_origin::{full, start_hostile_origin, Handler, HostileBody};
use crate::support::origin::start_origin;

/// How far the proxy's peak RSS may grow above its idle peak while moving the bodies.
const BOUND: u64 = 64 * 1024 * 1024;
/// Frame size of the generated bodies; one secret (or token) sits in every frame.
const FRAME: usize = 64 * 1024;
const TOKEN: &str = "osb_sealed_5e1f0c2d3b4a59687766554433221100";
const VALUE: &str = "memory-test-secret-value-7f3a9c";

fn body_mib() -> u64 {
    std::env::var("OSB_MEMORY_TEST_MIB")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(256)
}

/// The `bench_proxy` example of this build (`target/<profile>/examples/bench_proxy`), or the
/// binary `OSB_MEMORY_TEST_PROXY` names (to measure another build, e.g. an older commit).
fn bench_proxy_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("OSB_MEMORY_TEST_PROXY") {
        return PathBuf::from(binary);
    }
    let test_binary = std::env::current_exe().unwrap();
    let profile_dir = test_binary.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("examples").join("bench_proxy");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p osb-proxy --example bench_proxy` (cargo test and nextest build examples)",
        binary.display()
    );
    binary
}

/// The proxy in its own process; killed when dropped.
struct ChildProxy {
    child: Child,
    addr: SocketAddr,
    ca_pem: String,
    _data_dir: tempfile::TempDir,
}

impl ChildProxy {
    fn start(origin_authority: &str, origin_ca_pem: &str) -> Self {
        let binary = bench_proxy_binary();
        let data_dir = tempfile::tempdir().unwrap();
        let ca_file = data_dir.path().join("origin-ca.pem");
        std::fs::write(&ca_file, origin_ca_pem).unwrap();
        let init = Command::new(&binary)
            .args(["--init-ca", "--data-dir"])
            .arg(data_dir.path())
            .output()
            .unwrap();
        assert!(init.status.success(), "bench_proxy --init-ca failed");
        let ca_path = String::from_utf8(init.stdout).unwrap();
        let ca_pem = std::fs::read_to_string(ca_path.trim()).unwrap();
        let mut child = Command::new(&binary)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .env("OSB_BENCH_ORIGIN", origin_authority)
            .env("OSB_BENCH_ORIGIN_CA", &ca_file)
            .env("OSB_BENCH_TOKEN", TOKEN)
            .env("OSB_BENCH_SECRET", VALUE)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("bench_proxy exited before listening")
                .unwrap();
            if let Some(rest) = line.strip_prefix("bench proxy listening on ") {
                let addr = rest.split_whitespace().next().unwrap();
                break addr.parse().unwrap();
            }
        };
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            addr,
            ca_pem,
            _data_dir: data_dir,
        }
    }

    /// The child's peak resident set (`VmHWM`), in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))
            .unwrap();
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|value| value.parse().ok())
            .unwrap();
        kib * 1024
    }
}

impl Drop for ChildProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Counts the bytes of a stream and the occurrences of `needle` in it, across frame boundaries.
struct Counter {
    needle: &'static [u8],
    carry: Vec<u8>,
    bytes: u64,
    found: u64,
}

impl Counter {
    fn new(needle: &'static str) -> Self {
        Self {
            needle: needle.as_bytes(),
            carry: Vec::new(),
            bytes: 0,
            found: 0,
        }
    }

    fn feed(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        let keep = self.needle.len() - 1;
        let carried = self.carry.len();
        // Matches that start in the carried tail end within the first `keep` new bytes.
        self.carry.extend_from_slice(&data[..data.len().min(keep)]);
        self.found += memchr::memmem::find_iter(&self.carry, self.needle)
            .filter(|&at| at < carried)
            .count() as u64;
        self.found += memchr::memmem::find_iter(data, self.needle).count() as u64;
        if data.len() >= keep {
            self.carry.clear();
            self.carry.extend_from_slice(&data[data.len() - keep..]);
        } else {
            let excess = self.carry.len().saturating_sub(keep);
            self.carry.drain(..excess);
        }
    }
}

/// One frame of a generated body: text without `_` (so never a token by accident) with `needle`
/// at a fixed place.
fn frame_with(needle: &str) -> Bytes {
    let mut frame: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+/\n"
        .iter()
        .copied()
        .cycle()
        .take(FRAME)
        .collect();
    frame[1000..1000 + needle.len()].copy_from_slice(needle.as_bytes());
    Bytes::from(frame)
}

/// The length of `frames` generated frames after `sent` became `received` in each.
fn expected_len(frames: u64, sent: &str, received: &str) -> u64 {
    frames * (FRAME - sent.len() + received.len()) as u64
}

fn frames_of(mib: u64) -> u64 {
    mib * 1024 * 1024 / FRAME as u64
}

fn generated<E: Send + 'static>(
    needle: &str,
    frames: u64,
) -> http_body_util::combinators::BoxBody<Bytes, E> {
    let frame = frame_with(needle);
    let stream =
        futures_util::stream::iter((0..frames).map(move |_| Ok(Frame::data(frame.clone()))));
    http_body_util::StreamBody::new(stream).boxed()
}

/// `/sink` counts what arrived (bytes, values, tokens); `/bytes/<frames>/<length|chunked>`
/// streams a body with the secret value in every frame.
fn bulk_origin(sunk: Arc<Mutex<Vec<(u64, u64, u64)>>>) -> Handler {
    Arc::new(move |request: Request<hyper::body::Incoming>| {
        let sunk = Arc::clone(&sunk);
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            if path == "/sink" {
                let mut values = Counter::new(VALUE);
                let mut tokens = Counter::new(TOKEN);
                let mut body = request.into_body();
                while let Some(frame) = body.frame().await {
                    let Ok(frame) = frame else {
                        return Response::builder()
                            .status(400)
                            .body(full("aborted"))
                            .unwrap();
                    };
                    if let Some(data) = frame.data_ref() {
                        values.feed(data);
                        tokens.feed(data);
                    }
                }
                sunk.lock()
                    .unwrap()
                    .push((values.bytes, values.found, tokens.found));
                return Response::new(full("sunk"));
            }
            let mut parts = path.trim_start_matches("/bytes/").split('/');
            let frames: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let body: HostileBody = generated(VALUE, frames);
            let mut response = Response::builder();
            if parts.next() == Some("length") {
                response = response.header("content-length", frames * FRAME as u64);
            }
            response.body(body).unwrap()
        })
    })
}

struct Run {
    proxy: ChildProxy,
    authority: String,
    sunk: Arc<Mutex<Vec<(u64, u64, u64)>>>,
}

impl Run {
    async fn client(&self, http2: bool) -> Client {
        Client::through(
            sandbox_ip(1),
            self.proxy.addr,
            &self.authority,
            &self.proxy.ca_pem,
            http2,
        )
        .await
    }

    fn uri(&self, http2: bool, path: &str) -> String {
        if http2 {
            format!("https://{}{path}", self.authority)
        } else {
            path.to_owned()
        }
    }

    /// Uploads `frames` frames with a token in each; checks what the origin counted.
    async fn upload(&self, http2: bool, frames: u64, with_length: bool) {
        let case = format!("upload http2={http2} length={with_length} frames={frames}");
        let mut client = self.client(http2).await;
        let mut request = Request::post(self.uri(http2, "/sink")).header("host", &self.authority);
        if with_length {
            request = request.header("content-length", frames * FRAME as u64);
        }
        let body: ClientBody = generated(TOKEN, frames);
        let response = client.send_raw(request.body(body).unwrap()).await;
        let response = response.unwrap_or_else(|error| panic!("{case}: {error}"));
        assert_eq!(response.status(), 200, "{case}");
        let _ = response.into_body().collect().await;
        let (bytes, values, tokens) = self.sunk.lock().unwrap().pop().expect("origin sank it");
        assert_eq!(bytes, expected_len(frames, TOKEN, VALUE), "{case}");
        assert_eq!((values, tokens), (frames, 0), "{case}");
    }

    /// Downloads `frames` frames with the value in each; checks what the sandbox received.
    async fn download(&self, http2: bool, frames: u64, framing: &str) {
        let case = format!("download http2={http2} framing={framing} frames={frames}");
        let mut client = self.client(http2).await;
        let path = format!("/bytes/{frames}/{framing}");
        let request = Request::get(self.uri(http2, &path))
            .header("host", &self.authority)
            .body(crate::support::client::body(""))
            .unwrap();
        let response = client.send_raw(request).await.unwrap();
        assert_eq!(response.status(), 200, "{case}");
        let mut tokens = Counter::new(TOKEN);
        let mut values = Counter::new(VALUE);
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.unwrap_or_else(|error| panic!("{case}: {error}"));
            if let Some(data) = frame.data_ref() {
                tokens.feed(data);
                values.feed(data);
            }
        }
        assert_eq!(tokens.bytes, expected_len(frames, VALUE, TOKEN), "{case}");
        assert_eq!((tokens.found, values.found), (frames, 0), "{case}");
    }

    /// Every combination: both front ends, both framings, both directions; the peak after each
    /// is printed (the test's output says which case grew).
    async fn all(&self, frames: u64) {
        for http2 in [false, true] {
            self.upload(http2, frames, true).await;
            self.note(http2, "upload, content-length");
            self.upload(http2, frames, false).await;
            self.note(http2, "upload, chunked");
            self.download(http2, frames, "length").await;
            self.note(http2, "download, content-length");
            self.download(http2, frames, "chunked").await;
            self.note(http2, "download, chunked");
        }
    }

    fn note(&self, http2: bool, case: &str) {
        let protocol = if http2 { "h2" } else { "http/1.1" };
        let peak = self.proxy.peak_rss() >> 10;
        eprintln!("  after {protocol} {case}: VmHWM {peak} KiB");
    }
}

#[test]
fn counter_counts_across_any_split() {
    let mut data = b"xxosb".repeat(3);
    data.extend_from_slice(VALUE.as_bytes());
    data.extend_from_slice(b"yy");
    data.extend_from_slice(VALUE.as_bytes());
    data.extend_from_slice(VALUE.as_bytes());
    for piece in 1..data.len() {
        let mut counter = Counter::new(VALUE);
        for part in data.chunks(piece) {
            counter.feed(part);
        }
        assert_eq!(
            (counter.bytes, counter.found),
            (data.len() as u64, 3),
            "{piece}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_memory_stays_bounded_while_gigabyte_bodies_pass_both_ways() {
    let origin = start_origin().await;
    let sunk: Arc<Mutex<Vec<(u64, u64, u64)>>> = Arc::default();
    let bulk =
        start_hostile_origin(origin.tls_config.clone(), bulk_origin(Arc::clone(&sunk))).await;
    let authority = format!("api.example.test:{}", bulk.port());
    let proxy = ChildProxy::start(&authority, &origin.ca_pem);
    let run = Run {
        proxy,
        authority,
        sunk,
    };
    // Small bodies first, so the idle figure includes handshakes, leaves and pools.
    run.all(2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let idle = run.proxy.peak_rss();
    let frames = frames_of(body_mib());
    run.all(frames).await;
    let peak = run.proxy.peak_rss();
    let grown = peak.saturating_sub(idle);
    eprintln!(
        "proxy VmHWM: idle {} KiB, after 8 × {} MiB bodies {} KiB (+{} KiB; bound {} KiB)",
        idle / 1024,
        body_mib(),
        peak / 1024,
        grown / 1024,
        BOUND / 1024
    );
    assert!(
        grown <= BOUND,
        "the proxy's peak RSS grew by {} MiB moving {} MiB bodies (bound {} MiB)",
        grown >> 20,
        body_mib(),
        BOUND >> 20
    );
}
