//! The lingering close over an in-memory pipe with paused time: the client reads the answer and
//! an orderly end while its late bytes are discarded; the byte and time bounds cut a client that
//! never stops or never closes; the slot is held while lingering and given back on drop.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{ClientSocket, LingerBounds};
use crate::limits::{Limiter, Limits};
use crate::metrics::ProxyMetrics;

const BOUNDS: LingerBounds = LingerBounds {
    bytes: 256 * 1024,
    time: Duration::from_secs(2),
};

fn socket_pair(metrics: &Arc<ProxyMetrics>) -> (ClientSocket<DuplexStream>, DuplexStream) {
    let (proxy_side, client_side) = tokio::io::duplex(64 * 1024);
    let socket = ClientSocket::new(proxy_side, None, BOUNDS, Arc::clone(metrics));
    (socket, client_side)
}

#[tokio::test(start_paused = true)]
async fn the_client_reads_the_end_then_its_late_bytes_are_discarded_until_it_closes() {
    let metrics = Arc::new(ProxyMetrics::default());
    let (mut socket, mut client) = socket_pair(&metrics);
    socket.write_all(b"HTTP/1.1 429 ...").await.unwrap();
    let closing = tokio::spawn(async move {
        socket.shutdown().await.unwrap();
        socket
    });
    // The client still writes its body, then reads the whole answer and an orderly end.
    for _ in 0..10 {
        client.write_all(&[b'x'; 10 * 1024]).await.unwrap();
    }
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"HTTP/1.1 429 ...");
    drop(client);
    let socket = closing.await.unwrap();
    assert_eq!(metrics.lingering_closes(), 1);
    assert_eq!(metrics.lingering_discarded_bytes(), 100 * 1024);
    assert_eq!(metrics.lingering_cut(), 0, "the client closed first");
    assert!(format!("{socket:?}").contains("closed"));
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_stops_sending_is_cut_at_the_byte_bound() {
    let metrics = Arc::new(ProxyMetrics::default());
    let (mut socket, mut client) = socket_pair(&metrics);
    let flood = tokio::spawn(async move {
        let mut sent = 0usize;
        while client.write_all(&[b'x'; 8 * 1024]).await.is_ok() {
            sent += 8 * 1024;
        }
        sent
    });
    socket.shutdown().await.unwrap();
    assert_eq!(metrics.lingering_discarded_bytes(), BOUNDS.bytes as u64);
    assert_eq!(metrics.lingering_cut(), 1);
    drop(socket);
    let sent = flood.await.unwrap();
    assert!(
        sent <= BOUNDS.bytes + 64 * 1024,
        "the client could only fill the bound and the pipe: {sent}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stays_silent_and_open_is_cut_at_the_time_bound() {
    let metrics = Arc::new(ProxyMetrics::default());
    let (mut socket, _client) = socket_pair(&metrics);
    let started = tokio::time::Instant::now();
    socket.shutdown().await.unwrap();
    let lingered = started.elapsed();
    assert!(
        lingered >= BOUNDS.time && lingered < BOUNDS.time + Duration::from_millis(100),
        "{lingered:?}"
    );
    assert_eq!(metrics.lingering_cut(), 1);
    assert_eq!(metrics.lingering_discarded_bytes(), 0);
    // A second shutdown is a no-op.
    socket.shutdown().await.unwrap();
    assert_eq!(metrics.lingering_closes(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_slot_is_held_while_the_socket_lingers_and_given_back_when_it_is_dropped() {
    let metrics = Arc::new(ProxyMetrics::default());
    let limiter = Limiter::new(Limits::default());
    let source = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let slot = limiter.open_connection(source).unwrap();
    let (proxy_side, client) = tokio::io::duplex(1024);
    let mut socket = ClientSocket::new(proxy_side, Some(slot), BOUNDS, Arc::clone(&metrics));
    let closing = tokio::spawn(async move {
        socket.shutdown().await.unwrap();
        socket
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!closing.is_finished(), "still lingering");
    assert_eq!(
        limiter.open_connections(),
        1,
        "a lingering socket keeps its slot"
    );
    drop(client);
    let socket = closing.await.unwrap();
    assert_eq!(limiter.open_connections(), 1, "shut down but not dropped");
    drop(socket);
    assert_eq!(limiter.open_connections(), 0);
}
