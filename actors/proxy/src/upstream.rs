//! The upstream leg: resolves a target (with operator `host=address` overrides), refuses
//! addresses the policy forbids before any packet is sent, dials TCP, verifies the upstream's
//! certificate against system roots plus configured extra CAs, negotiates ALPN and hands back a
//! hyper sender. A small per-connection pool keeps upstream connections for keep-alive. It must
//! never dial a forbidden address and never skip certificate verification.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::body::ProxyBody;
use crate::policy::{Scheme, SealingPolicy, Target};
use crate::refusal::Refusal;

/// Why the upstream TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamTlsError {
    #[error("extra upstream CA PEM number {index} is unreadable: {reason}")]
    BadExtraCa { index: usize, reason: String },
    #[error("no trusted root certificates: enable system roots or configure extra upstream CAs")]
    NoRoots,
    #[error("tls configuration failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// A ready sender to one upstream.
#[derive(Debug)]
pub enum UpstreamSender {
    Http1(http1::SendRequest<ProxyBody>),
    Http2(http2::SendRequest<ProxyBody>),
}

impl UpstreamSender {
    pub fn is_http2(&self) -> bool {
        matches!(self, UpstreamSender::Http2(_))
    }

    pub async fn send(
        &mut self,
        request: http::Request<ProxyBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper::Error> {
        match self {
            UpstreamSender::Http1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
            UpstreamSender::Http2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await
            }
        }
    }
}

/// Dials upstreams.
pub struct UpstreamConnector {
    tls_http1: TlsConnector,
    tls_http2: TlsConnector,
    overrides: HashMap<String, IpAddr>,
    policy: SealingPolicy,
    connect_timeout: Duration,
}

impl std::fmt::Debug for UpstreamConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConnector")
            .field("overrides", &self.overrides)
            .field("policy", &self.policy)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

/// Builds the root store: system roots (native, else the bundled Mozilla list) plus extra PEMs.
pub fn root_store(
    use_system_roots: bool,
    extra_ca_pems: &[Vec<u8>],
) -> Result<RootCertStore, UpstreamTlsError> {
    let mut roots = RootCertStore::empty();
    if use_system_roots {
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
    }
    for (index, pem) in extra_ca_pems.iter().enumerate() {
        let mut reader = std::io::BufReader::new(pem.as_slice());
        let certs: Vec<_> = rustls_pemfile::certs(&mut reader)
            .collect::<Result<_, _>>()
            .map_err(|error| UpstreamTlsError::BadExtraCa {
                index,
                reason: error.to_string(),
            })?;
        if certs.is_empty() {
            return Err(UpstreamTlsError::BadExtraCa {
                index,
                reason: "no certificate found".into(),
            });
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|error| UpstreamTlsError::BadExtraCa {
                    index,
                    reason: error.to_string(),
                })?;
        }
    }
    if roots.is_empty() {
        return Err(UpstreamTlsError::NoRoots);
    }
    Ok(roots)
}

fn client_config(
    roots: &RootCertStore,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, UpstreamTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

impl UpstreamConnector {
    pub fn new(
        roots: RootCertStore,
        overrides: HashMap<String, IpAddr>,
        policy: SealingPolicy,
        connect_timeout: Duration,
    ) -> Result<Self, UpstreamTlsError> {
        Ok(Self {
            tls_http1: TlsConnector::from(client_config(&roots, &[b"http/1.1"])?),
            tls_http2: TlsConnector::from(client_config(&roots, &[b"h2", b"http/1.1"])?),
            overrides,
            policy,
            connect_timeout,
        })
    }

    /// Addresses the target may be dialled at, after overrides and the address policy.
    pub async fn resolve(&self, target: &Target) -> Result<Vec<SocketAddr>, Refusal> {
        let candidates: Vec<SocketAddr> = if let Some(ip) = self.overrides.get(&target.host) {
            vec![SocketAddr::new(*ip, target.port)]
        } else if let Ok(ip) = target.host.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, target.port)]
        } else {
            tokio::net::lookup_host((target.host.as_str(), target.port))
                .await
                .map_err(|error| {
                    Refusal::upstream_failure(&target.host, &format!("dns lookup failed: {error}"))
                })?
                .collect()
        };
        let mut first_reason = None;
        let allowed: Vec<SocketAddr> = candidates
            .into_iter()
            .filter(|addr| match self.policy.check_address(addr.ip()) {
                Ok(()) => true,
                Err(reason) => {
                    first_reason.get_or_insert(reason);
                    false
                }
            })
            .collect();
        if allowed.is_empty() {
            return Err(match first_reason {
                Some(reason) => Refusal::forbidden_address(&target.host, reason),
                None => Refusal::upstream_failure(&target.host, "dns lookup returned no address"),
            });
        }
        Ok(allowed)
    }

    /// Opens a connection and performs the HTTP handshake. `offer_http2` mirrors the client leg.
    pub async fn connect(
        &self,
        target: &Target,
        offer_http2: bool,
    ) -> Result<UpstreamSender, Refusal> {
        let addresses = self.resolve(target).await?;
        let failure = |reason: String| Refusal::upstream_failure(&target.host, &reason);
        let mut last_error = String::from("no address");
        let mut stream = None;
        for address in addresses {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
                Ok(Ok(tcp)) => {
                    stream = Some(tcp);
                    break;
                }
                Ok(Err(error)) => last_error = format!("connect to {address} failed: {error}"),
                Err(_) => last_error = format!("connect to {address} timed out"),
            }
        }
        let tcp = stream.ok_or_else(|| failure(last_error))?;
        let _ = tcp.set_nodelay(true);
        match target.scheme {
            Scheme::Http => handshake_http1(TokioIo::new(tcp), &target.host).await,
            Scheme::Https => {
                let server_name = ServerName::try_from(target.host.clone())
                    .map_err(|_| failure("host is not a valid tls server name".into()))?;
                let connector = if offer_http2 {
                    &self.tls_http2
                } else {
                    &self.tls_http1
                };
                let tls =
                    tokio::time::timeout(self.connect_timeout, connector.connect(server_name, tcp))
                        .await
                        .map_err(|_| failure("tls handshake timed out".into()))?
                        .map_err(|error| failure(format!("tls handshake failed: {error}")))?;
                let negotiated_http2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                if negotiated_http2 {
                    let (sender, connection) =
                        http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                            .await
                            .map_err(|error| {
                                failure(format!("http/2 handshake failed: {error}"))
                            })?;
                    let host = target.host.clone();
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(host = %host, %error, "upstream h2 connection ended");
                        }
                    });
                    Ok(UpstreamSender::Http2(sender))
                } else {
                    handshake_http1(TokioIo::new(tls), &target.host).await
                }
            }
        }
    }
}

async fn handshake_http1<T>(io: TokioIo<T>, host: &str) -> Result<UpstreamSender, Refusal>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::Builder::new().handshake(io).await.map_err(|error| {
        Refusal::upstream_failure(host, &format!("http/1.1 handshake failed: {error}"))
    })?;
    let host = host.to_owned();
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(host = %host, %error, "upstream h1 connection ended");
        }
    });
    Ok(UpstreamSender::Http1(sender))
}

/// Upstream connections kept by one downstream connection, per target.
#[derive(Debug, Default)]
pub struct UpstreamPool {
    idle_http1: Mutex<Vec<(Target, http1::SendRequest<ProxyBody>)>>,
    http2: Mutex<Vec<(Target, http2::SendRequest<ProxyBody>)>>,
}

impl UpstreamPool {
    /// A sender for the target: a shared h2 connection, an idle h1 connection, or a new one.
    pub async fn acquire(
        &self,
        connector: &UpstreamConnector,
        target: &Target,
        offer_http2: bool,
    ) -> Result<UpstreamSender, Refusal> {
        {
            let mut shared = self.http2.lock().unwrap_or_else(PoisonError::into_inner);
            shared.retain(|(_, sender)| !sender.is_closed());
            if let Some((_, sender)) = shared.iter().find(|(own, _)| own == target) {
                return Ok(UpstreamSender::Http2(sender.clone()));
            }
        }
        // A released sender may still be finishing its previous response body: wait for it. One
        // that turns out closed (the previous body was abandoned) is dropped and the next tried,
        // so a stale connection never becomes a 502.
        while let Some(mut sender) = self.take_idle(target) {
            if sender.ready().await.is_ok() {
                return Ok(UpstreamSender::Http1(sender));
            }
        }
        let sender = connector.connect(target, offer_http2).await?;
        if let UpstreamSender::Http2(shared) = &sender {
            self.http2
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((target.clone(), shared.clone()));
        }
        Ok(sender)
    }

    fn take_idle(&self, target: &Target) -> Option<http1::SendRequest<ProxyBody>> {
        let mut idle = self
            .idle_http1
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        idle.retain(|(_, sender)| !sender.is_closed());
        let position = idle.iter().position(|(own, _)| own == target)?;
        Some(idle.swap_remove(position).1)
    }

    /// Returns an h1 sender for reuse by the next request (h2 senders stay shared).
    pub fn release(&self, target: &Target, sender: UpstreamSender) {
        if let UpstreamSender::Http1(sender) = sender {
            if !sender.is_closed() {
                let mut idle = self
                    .idle_http1
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if idle.len() < 8 {
                    idle.push((target.clone(), sender));
                }
            }
        }
    }
}
