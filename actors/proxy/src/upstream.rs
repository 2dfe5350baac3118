//! The upstream leg: resolves a target (with operator `host=address` overrides), refuses
//! addresses the policy forbids before any packet is sent, dials TCP, verifies the upstream's
//! certificate against system roots plus configured extra CAs, negotiates ALPN and hands back a
//! hyper sender (reuse lives in `pool`). It must never dial a forbidden address and never skip
//! certificate verification.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
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

    /// Sends a request. On failure, hyper hands the request back when none of it was written,
    /// which is what makes a retry on another connection safe.
    pub async fn try_send(
        &mut self,
        request: http::Request<ProxyBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, SendFailure> {
        match self {
            UpstreamSender::Http1(sender) => {
                if let Err(error) = sender.ready().await {
                    return Err(SendFailure::unsent(error, request));
                }
                sender
                    .try_send_request(request)
                    .await
                    .map_err(SendFailure::from_hyper)
            }
            UpstreamSender::Http2(sender) => {
                if let Err(error) = sender.ready().await {
                    return Err(SendFailure::unsent(error, request));
                }
                sender
                    .try_send_request(request)
                    .await
                    .map_err(SendFailure::from_hyper)
            }
        }
    }
}

/// Why an upstream exchange failed, with the request when it provably was not sent.
#[derive(Debug)]
pub struct SendFailure {
    pub error: hyper::Error,
    pub unsent: Option<http::Request<ProxyBody>>,
}

impl SendFailure {
    fn unsent(error: hyper::Error, request: http::Request<ProxyBody>) -> Self {
        Self {
            error,
            unsent: Some(request),
        }
    }

    fn from_hyper(
        mut failure: hyper::client::conn::TrySendError<http::Request<ProxyBody>>,
    ) -> Self {
        let unsent = failure.take_message();
        Self {
            error: failure.into_error(),
            unsent,
        }
    }

    /// Whether the connection went away under the request (closed or reset by the peer), as
    /// opposed to a protocol error or a timeout: the only failures worth a retry.
    pub fn is_connection_lost(&self) -> bool {
        if self.error.is_incomplete_message() || self.error.is_canceled() {
            return true;
        }
        let mut source = std::error::Error::source(&self.error);
        while let Some(cause) = source {
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                return matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::UnexpectedEof
                );
            }
            source = cause.source();
        }
        false
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

    /// Opens a TCP connection to an address the policy allows.
    async fn dial_tcp(&self, target: &Target) -> Result<TcpStream, Refusal> {
        let addresses = self.resolve(target).await?;
        let mut last_error = String::from("no address");
        for address in addresses {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
                Ok(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Ok(Err(error)) => last_error = format!("connect to {address} failed: {error}"),
                Err(_) => last_error = format!("connect to {address} timed out"),
            }
        }
        Err(Refusal::upstream_failure(&target.host, &last_error))
    }

    /// Opens a verified TLS connection to an `https` target, offering `h2` only when asked.
    pub async fn dial_tls(
        &self,
        target: &Target,
        offer_http2: bool,
    ) -> Result<TlsStream<TcpStream>, Refusal> {
        let tcp = self.dial_tcp(target).await?;
        let failure = |reason: String| Refusal::upstream_failure(&target.host, &reason);
        let server_name = ServerName::try_from(target.host.clone())
            .map_err(|_| failure("host is not a valid tls server name".into()))?;
        let connector = if offer_http2 {
            &self.tls_http2
        } else {
            &self.tls_http1
        };
        let mut tls =
            tokio::time::timeout(self.connect_timeout, connector.connect(server_name, tcp))
                .await
                .map_err(|_| failure("tls handshake timed out".into()))?
                .map_err(|error| failure(format!("tls handshake failed: {error}")))?;
        crate::tls_buffers::widen_send_queue(tls.get_mut().1);
        Ok(tls)
    }

    /// Opens a connection and performs the HTTP handshake. `offer_http2` mirrors the client leg.
    pub async fn connect(
        &self,
        target: &Target,
        offer_http2: bool,
    ) -> Result<UpstreamSender, Refusal> {
        match target.scheme {
            Scheme::Http => {
                let tcp = self.dial_tcp(target).await?;
                handshake_http1(TokioIo::new(tcp), &target.host).await
            }
            Scheme::Https => {
                let tls = self.dial_tls(target, offer_http2).await?;
                let negotiated_http2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                if negotiated_http2 {
                    let failure = |reason: String| Refusal::upstream_failure(&target.host, &reason);
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
