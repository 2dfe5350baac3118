//! A local test origin: hyper + rustls with its own test CA, HTTP/1.1 and HTTP/2, plus a plain
//! HTTP listener. `/echo` reflects the request line, headers and body; `/sink` answers the body's
//! length and sha256; `/split-reflect` streams the `x-reflect` header back split across two
//! frames; `/ws` accepts an upgrade and echoes WebSocket frames. Every request is recorded so tests can check
//! what really arrived.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

type OriginBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// What the origin received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub uri: String,
    pub version: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(own, _)| own == name)
            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
    }

    /// Everything as bytes, for "did the value arrive" checks.
    pub fn all_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\n", self.method, self.uri, self.version).into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.push(b'\n');
        }
        out.extend_from_slice(&self.body);
        out
    }
}

#[derive(Debug)]
pub struct Origin {
    pub tls_addr: SocketAddr,
    pub plain_addr: SocketAddr,
    pub ca_pem: String,
    /// The origin's TLS configuration, for extra test servers with the same certificate.
    pub tls_config: Arc<rustls::ServerConfig>,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Origin {
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn last(&self) -> Received {
        self.requests()
            .last()
            .cloned()
            .expect("the origin received no request")
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

pub async fn start_origin() -> Origin {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let names: Vec<String> = [
        "api.example.test",
        "a.example.test",
        "b.a.example.test",
        "other.example.test",
        "example.test",
        "evil.test",
        "127.0.0.1",
        "localhost",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tls_config = Arc::new(config);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls_config));
    let received = Arc::new(Mutex::new(Vec::new()));

    let tls_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_addr = tls_listener.local_addr().unwrap();
    let log = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((stream, _)) = tls_listener.accept().await {
            let acceptor = acceptor.clone();
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                serve(TokioIo::new(tls), log).await;
            });
        }
    });
    let plain_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain_listener.local_addr().unwrap();
    let log = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((stream, _)) = plain_listener.accept().await {
            let log = Arc::clone(&log);
            tokio::spawn(async move { serve(TokioIo::new(stream), log).await });
        }
    });
    Origin {
        tls_addr,
        plain_addr,
        ca_pem: ca_cert.pem(),
        tls_config,
        received,
    }
}

async fn serve<IO>(io: TokioIo<IO>, log: Arc<Mutex<Vec<Received>>>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let log = Arc::clone(&log);
        async move { Ok::<_, Infallible>(route(request, log).await) }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(io, service)
        .await;
}

fn full(bytes: impl Into<Bytes>) -> OriginBody {
    Full::new(bytes.into()).boxed()
}

async fn route(
    mut request: Request<Incoming>,
    log: Arc<Mutex<Vec<Received>>>,
) -> Response<OriginBody> {
    let upgrade = hyper::upgrade::on(&mut request);
    let method = request.method().to_string();
    let uri = request.uri().to_string();
    let version = format!("{:?}", request.version());
    let headers: Vec<(String, Vec<u8>)> = request
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect();
    let path = request.uri().path().to_owned();
    let reflect = request
        .headers()
        .get("x-reflect")
        .map(|v| v.as_bytes().to_vec());
    let body = request
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let received = Received {
        method,
        uri,
        version,
        headers,
        body: body.to_vec(),
    };
    log.lock().unwrap().push(received.clone());
    match path.as_str() {
        "/sink" => {
            let digest = hex::encode(Sha256::digest(&body));
            Response::new(full(format!("len={} sha256={digest}", body.len())))
        }
        "/split-reflect" => {
            let value = reflect.unwrap_or_default();
            let middle = value.len() / 2;
            let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
                Ok(Frame::data(Bytes::from_static(b"start:"))),
                Ok(Frame::data(Bytes::copy_from_slice(&value[..middle]))),
                Ok(Frame::data(Bytes::copy_from_slice(&value[middle..]))),
                Ok(Frame::data(Bytes::from_static(b":end"))),
            ];
            let mut response =
                Response::new(StreamBody::new(futures_util::stream::iter(frames)).boxed());
            response.headers_mut().insert(
                "x-reflect-back",
                http::HeaderValue::from_bytes(&value).unwrap(),
            );
            response
        }
        "/ws" => {
            tokio::spawn(async move {
                // A WebSocket echo: every frame back as it came, unmasked (RFC 6455 §5.1).
                if let Ok(upgraded) = upgrade.await {
                    let mut io = TokioIo::new(upgraded);
                    while let Ok((fin, opcode, _, payload)) = super::ws::read_frame(&mut io).await {
                        let echo = super::ws::frame(fin, opcode, None, &payload);
                        if io.write_all(&echo).await.is_err() || opcode == super::ws::CLOSE {
                            break;
                        }
                    }
                }
            });
            let mut response = Response::new(full(Bytes::new()));
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            response
                .headers_mut()
                .insert("upgrade", http::HeaderValue::from_static("websocket"));
            response
                .headers_mut()
                .insert("connection", http::HeaderValue::from_static("upgrade"));
            response
        }
        _ => Response::new(full(received.all_bytes())),
    }
}
