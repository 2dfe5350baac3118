//! Clients that play the sandbox: a Rust hyper client tunnelling through CONNECT (or straight to
//! the transparent listener) from a chosen 127.0.0.x address, and wrappers around `curl` and
//! Python `urllib`. Every byte a client receives is kept so the canary test can search it.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

pub type ClientBody = BoxBody<Bytes, std::io::Error>;

/// Everything any client in this process received (status lines, headers, bodies, stdout).
pub fn received_by_sandbox() -> &'static Mutex<Vec<u8>> {
    static RECEIVED: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    RECEIVED.get_or_init(|| Mutex::new(Vec::new()))
}

fn remember(bytes: &[u8]) {
    received_by_sandbox()
        .lock()
        .unwrap()
        .extend_from_slice(bytes);
}

pub fn body(bytes: impl Into<Bytes>) -> ClientBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub async fn connect_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Sends CONNECT; returns the stream on 200, or the refusal (status, body).
pub async fn connect_tunnel(
    source: IpAddr,
    proxy: SocketAddr,
    authority: &str,
) -> Result<TcpStream, (u16, String)> {
    let mut stream = connect_from(source, proxy).await;
    stream
        .write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    remember(&head);
    let text = String::from_utf8_lossy(&head).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status == 200 {
        return Ok(stream);
    }
    let length: usize = text
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    remember(&body);
    Err((status, String::from_utf8_lossy(&body).into_owned()))
}

pub fn tls_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// An HTTP client over one TLS connection (h1 or h2 by ALPN).
pub enum Client {
    H1(http1::SendRequest<ClientBody>),
    H2(http2::SendRequest<ClientBody>),
}

impl Client {
    /// TLS over an established stream (a CONNECT tunnel or a direct transparent connection).
    pub async fn over(stream: TcpStream, ca_pem: &str, sni: &str, http2_only: bool) -> Client {
        let alpn: &[&[u8]] = if http2_only { &[b"h2"] } else { &[b"http/1.1"] };
        let connector = tokio_rustls::TlsConnector::from(tls_config(ca_pem, alpn));
        let tls = connector
            .connect(ServerName::try_from(sni.to_owned()).unwrap(), stream)
            .await
            .unwrap();
        if http2_only {
            assert_eq!(
                tls.get_ref().1.alpn_protocol(),
                Some(&b"h2"[..]),
                "the proxy must offer h2"
            );
            let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
            tokio::spawn(connection);
            Client::H2(sender)
        } else {
            let (sender, connection) = http1::handshake(TokioIo::new(tls)).await.unwrap();
            tokio::spawn(connection.with_upgrades());
            Client::H1(sender)
        }
    }

    /// CONNECT through the explicit proxy, then TLS with SNI = host.
    pub async fn through(
        source: IpAddr,
        proxy: SocketAddr,
        authority: &str,
        ca_pem: &str,
        http2: bool,
    ) -> Client {
        let stream = connect_tunnel(source, proxy, authority)
            .await
            .expect("CONNECT refused");
        let host = authority
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(authority);
        Client::over(stream, ca_pem, host, http2).await
    }

    pub async fn send_raw(
        &mut self,
        request: Request<ClientBody>,
    ) -> Result<Response<hyper::body::Incoming>, hyper::Error> {
        match self {
            Client::H1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
            Client::H2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
        }
    }

    /// Sends and collects (status, headers as text, body); everything is remembered.
    pub async fn send(&mut self, request: Request<ClientBody>) -> (u16, String, Vec<u8>) {
        let response = self.send_raw(request).await.unwrap();
        let status = response.status().as_u16();
        let headers: String = response
            .headers()
            .iter()
            .map(|(n, v)| format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        remember(headers.as_bytes());
        remember(&body);
        (status, headers, body)
    }
}

/// Output of a command-line client.
#[derive(Debug)]
pub struct Output {
    pub status: u16,
    pub body: String,
    /// Shown by `{:?}` in assertion messages.
    #[allow(dead_code)]
    pub stderr: String,
}

/// Runs curl through the explicit proxy from 127.0.0.`source`; `-w` prints the status last.
pub fn curl(proxy: SocketAddr, source: IpAddr, ca_file: &std::path::Path, args: &[&str]) -> Output {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--noproxy", "", "--proxy"])
        .arg(format!("http://{proxy}"))
        .arg("--cacert")
        .arg(ca_file)
        .args(["--interface", &source.to_string(), "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    remember(stdout.as_bytes());
    remember(&output.stderr);
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
    Output {
        status: status.trim().parse().unwrap_or(0),
        body: body.to_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
