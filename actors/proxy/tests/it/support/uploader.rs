//! A raw HTTP/1.1 client over TLS through CONNECT that uploads a request body the way real
//! clients do when the answer comes early: either writing in chunks while it reads (curl,
//! hyper), or writing everything before it reads a byte (Python's `http.client`). It records
//! what it wrote, whether a write failed, and the answer it read (head and `Content-Length`
//! body), so a test can tell "read the refusal" from "saw a broken pipe or a reset".

use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::client::{connect_from, connect_tunnel, tls_config};
use super::harness::{sandbox_ip, Harness};

/// How the body is written: in chunks of `chunk` bytes with `pause` between them, reading the
/// answer meanwhile or only once every byte was written. Writing stops at the first failed
/// write; a client that reads meanwhile does not stop when the answer arrives (the worst case
/// for the proxy: it keeps sending).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub chunk: usize,
    pub pause: Duration,
    pub reads: Reads,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Like curl and hyper: the answer is read as soon as it arrives.
    WhileWriting,
    /// Like Python's `http.client`: nothing is read before the whole body was written.
    AfterWriting,
}

/// What the client saw.
#[derive(Debug)]
pub struct Upload {
    /// Body bytes written successfully.
    pub written: usize,
    /// The first write that failed (broken pipe, reset), if any.
    pub write_error: Option<String>,
    /// The answer, when it arrived whole (`None`: the stream ended or failed before).
    pub answer: Option<Answer>,
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not json: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// TLS (ALPN http/1.1) through a CONNECT tunnel from 127.0.0.`last` to `host` at the origin.
pub async fn tunnel(h: &Harness, last: u8, host: &str) -> TlsStream<TcpStream> {
    let stream = connect_tunnel(sandbox_ip(last), h.proxy.explicit_addr(), &h.at(host))
        .await
        .expect("CONNECT admitted");
    let connector =
        tokio_rustls::TlsConnector::from(tls_config(h.proxy.ca_cert_pem(), &[b"http/1.1"]));
    connector
        .connect(ServerName::try_from(host.to_owned()).unwrap(), stream)
        .await
        .unwrap()
}

/// TLS (ALPN http/1.1) straight to the transparent listener from 127.0.0.`last`, SNI `host`
/// (the harness's original destination is the origin's TLS port).
pub async fn transparent(h: &Harness, last: u8, host: &str) -> TlsStream<TcpStream> {
    let transparent = h.proxy.transparent_addr().expect("a transparent listener");
    let stream = connect_from(sandbox_ip(last), transparent).await;
    let connector =
        tokio_rustls::TlsConnector::from(tls_config(h.proxy.ca_cert_pem(), &[b"http/1.1"]));
    connector
        .connect(ServerName::try_from(host.to_owned()).unwrap(), stream)
        .await
        .unwrap()
}

/// Reads one answer: the head, then its `Content-Length` body.
pub async fn read_answer<R: AsyncRead + Unpin>(reader: &mut R) -> Option<Answer> {
    let mut seen = Vec::new();
    let mut piece = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match reader.read(&mut piece).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => seen.extend_from_slice(&piece[..read]),
        }
    };
    let head = String::from_utf8_lossy(&seen[..head_end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head.lines().find_map(|line| {
        let lower = line.to_ascii_lowercase();
        lower
            .strip_prefix("content-length:")
            .and_then(|value| value.trim().parse().ok())
    })?;
    let mut body = seen[head_end..].to_vec();
    while body.len() < length {
        match reader.read(&mut piece).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => body.extend_from_slice(&piece[..read]),
        }
    }
    body.truncate(length);
    Some(Answer { status, head, body })
}

/// Writes `head` then `body_len` bytes of `fill` (cycled) at `pace`, and reads the answer.
pub async fn upload<S>(tls: S, head: String, body_len: usize, fill: &[u8], pace: Pace) -> Upload
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(tls);
    let chunk: Vec<u8> = fill.iter().copied().cycle().take(pace.chunk).collect();
    let (reading, mut reader) = match pace.reads {
        Reads::WhileWriting => {
            let task = tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(20), read_answer(&mut reader))
                    .await
                    .ok()
                    .flatten()
            });
            (Some(task), None)
        }
        Reads::AfterWriting => (None, Some(reader)),
    };
    let mut written = 0;
    let mut write_error = None;
    if let Err(error) = writer.write_all(head.as_bytes()).await {
        write_error = Some(error.to_string());
    }
    while write_error.is_none() && written < body_len {
        let take = chunk.len().min(body_len - written);
        match writer.write_all(&chunk[..take]).await {
            Ok(()) => written += take,
            Err(error) => write_error = Some(error.to_string()),
        }
        if !pace.pause.is_zero() {
            tokio::time::sleep(pace.pause).await;
        }
    }
    if write_error.is_none() {
        if let Err(error) = writer.flush().await {
            write_error = Some(error.to_string());
        }
    }
    let answer = match (reading, reader.as_mut()) {
        (Some(task), _) => task.await.unwrap(),
        (None, Some(reader)) => tokio::time::timeout(Duration::from_secs(20), read_answer(reader))
            .await
            .ok()
            .flatten(),
        (None, None) => None,
    };
    Upload {
        written,
        write_error,
        answer,
    }
}
