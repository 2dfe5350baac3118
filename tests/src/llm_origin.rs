//! `LlmOrigin`: a local TLS origin playing an LLM API for end-to-end tests: `POST|GET /v1/messages` answers 200 only when
//! `x-api-key` carries the real key (401 otherwise) and echoes the key it received in its
//! JSON body, so a test sees both what reached the upstream and what came back to the sandbox.
//! It listens on a loopback address of its own on port 443 (the port the sandbox dials).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A running origin; dropping it stops it.
#[derive(Debug)]
pub struct LlmOrigin {
    pub ca_pem: String,
    /// Every `x-api-key` value the origin received.
    pub seen_keys: Arc<Mutex<Vec<String>>>,
    real_key: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LlmOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LlmOrigin {
    /// Starts the origin for `host` on `bind`; it accepts only `real_key` in `x-api-key`.
    pub async fn start(host: &str, bind: SocketAddr, real_key: String) -> LlmOrigin {
        let ca_key = KeyPair::generate().expect("test origin setup");
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).expect("test origin setup");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "data-plane test origin CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("test origin setup");
        let ca_pem = ca_cert.pem();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().expect("test origin setup");
        let leaf = CertificateParams::new(vec![host.to_owned()])
            .expect("test origin setup")
            .signed_by(&leaf_key, &issuer)
            .expect("test origin setup");

        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .expect("test origin setup");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(bind).await.expect("test origin setup");
        let seen_keys = Arc::new(Mutex::new(Vec::new()));
        let seen = seen_keys.clone();
        let real_key = Arc::new(Mutex::new(real_key));
        let accepted = real_key.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let acceptor = acceptor.clone();
                let seen = seen.clone();
                let real_key = accepted.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        let real_key = real_key.clone();
                        async move {
                            let key = request
                                .headers()
                                .get("x-api-key")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            seen.lock().expect("test origin setup").push(key.clone());
                            let expected = real_key.lock().expect("test origin setup").clone();
                            let status = if key == expected { 200 } else { 401 };
                            let body = serde_json::json!({ "path": request.uri().path(), "receivedKey": key });
                            Ok::<_, std::convert::Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body.to_string())))
                                    .expect("test origin setup"),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        LlmOrigin {
            ca_pem,
            seen_keys,
            real_key,
            task,
        }
    }

    /// From now on the origin accepts `key` (a rotated credential) instead of the old one.
    pub fn set_real_key(&self, key: &str) {
        *self.real_key.lock().expect("test origin setup") = key.to_owned();
    }
}
