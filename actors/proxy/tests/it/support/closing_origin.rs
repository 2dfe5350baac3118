//! An HTTP/1.1 origin that behaves like a server whose keep-alive idle timer fires just as the
//! next request arrives: it answers the first request of each connection with a keep-alive
//! response, then reads the second request and closes the connection without answering. Written
//! over raw TLS so the close is exactly where the test wants it. Every request head it reads is
//! logged with its connection number.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request the origin read: connection number, request line.
pub type Seen = (usize, String);

pub struct ClosingOrigin {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl ClosingOrigin {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request head and its `Content-Length` body; `None` at end of stream.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let length: usize = text
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(text.lines().next().unwrap_or_default().to_owned())
}

pub async fn start_closing_origin(tls: Arc<rustls::ServerConfig>) -> ClosingOrigin {
    let mut config = (*tls).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        let mut connections = 0usize;
        while let Ok((stream, _)) = listener.accept().await {
            connections += 1;
            let number = connections;
            let acceptor = acceptor.clone();
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Some(first) = read_request(&mut tls).await else {
                    return;
                };
                log.lock().unwrap().push((number, first));
                let body = format!("connection {number}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if tls.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
                let _ = tls.flush().await;
                if let Some(second) = read_request(&mut tls).await {
                    log.lock().unwrap().push((number, second));
                }
                // Dropped without an answer: the idle timer "fired" as the request arrived.
            });
        }
    });
    ClosingOrigin { addr, seen }
}
