//! The two front doors. The explicit listener speaks HTTP/1.1 to clients that honour
//! `HTTPS_PROXY`: `CONNECT host:port` opens a TLS tunnel the proxy terminates with a minted leaf,
//! and absolute-URI requests are plain HTTP. The transparent listener takes redirected tcp/443
//! (TLS, host from SNI) and tcp/80 (host from `Host`), with the port from the original
//! destination. Every accepted connection first takes a slot from the limiter (per sandbox and
//! per worker), held by its [`ClientSocket`] until the socket is dropped, which closes with a
//! lingering close (ADR 0114); every tunnel and every TLS handshake passes [`admit`] before the
//! proxy mints a certificate, and a mint is also bounded per source. Requests then go to the
//! express lane or hyper. Neither door ever tunnels bytes it has not inspected.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::LazyConfigAcceptor;

use crate::admission::{admit, report_refusal, Admission, Authority, BlockFacts};
use crate::body::{empty_body, ProxyBody};
use crate::handler::{handle, plain_http_target, refusal_response, refuse};
use crate::hyper_front::{http1_server, serve_hyper};
use crate::limits::ConnectionPermit;
use crate::linger::ClientSocket;
use crate::original_dst::OriginalDestination;
use crate::policy::{parse_authority, Scheme, Target};
use crate::refusal::Refusal;
use crate::shared::{ClientConnection, Shared};

/// How a TLS connection's target is known.
#[derive(Debug, Clone)]
enum TlsTarget {
    /// From the CONNECT line (already admitted); the SNI must agree.
    Connect(Target),
    /// From SNI (or the original destination address without SNI) and the original port.
    Transparent { port: u16, original_ip: IpAddr },
}

/// Which door a connection came through (what a refused one is told).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Explicit,
    Transparent,
}

/// Takes a connection slot for `peer`, or refuses: the explicit door answers with the JSON
/// reason (its clients speak HTTP to the proxy first), the transparent one closes.
fn take_slot(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    door: Door,
) -> Option<(TcpStream, ConnectionPermit)> {
    match shared.limiter.open_connection(peer.ip()) {
        Ok(permit) => Some((stream, permit)),
        Err(refusal) => {
            let session = shared.registry.lookup(peer.ip());
            let facts = BlockFacts {
                source_ip: peer.ip(),
                session: session.as_deref(),
                host: None,
                method: None,
                path: None,
            };
            report_refusal(shared, facts, &refusal);
            if door == Door::Explicit {
                tokio::spawn(async move {
                    let mut stream = stream;
                    let answer = crate::express::refusal_bytes(&refusal, true);
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        stream.write_all(&answer),
                    )
                    .await;
                    let _ = stream.shutdown().await;
                });
            }
            None
        }
    }
}

/// Serves an accepted connection on a lane (its socket moves to the lane's reactor), or on this
/// runtime when there are no lanes or the socket cannot move. The slot goes into the
/// [`ClientSocket`], so it is held as long as the socket lives — also in a CONNECT tunnel or a
/// WebSocket relay that outlives the task that accepted it, and while the socket lingers.
fn on_a_lane<F, Fut>(shared: &Arc<Shared>, stream: TcpStream, permit: ConnectionPermit, serve: F)
where
    F: FnOnce(Arc<Shared>, ClientSocket<TcpStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let lane_shared = Arc::clone(shared);
    let std_stream = match stream.into_std() {
        Ok(std_stream) => std_stream,
        Err(error) => {
            tracing::warn!(%error, "an accepted connection could not be handed to a lane");
            return;
        }
    };
    let job: crate::lanes::LaneJob = Box::new(move || {
        Box::pin(async move {
            match TcpStream::from_std(std_stream) {
                Ok(stream) => {
                    let bounds = lane_shared.limiter.linger_bounds();
                    let metrics = Arc::clone(&lane_shared.metrics);
                    let socket = ClientSocket::new(stream, Some(permit), bounds, metrics);
                    serve(lane_shared, socket).await;
                }
                Err(error) => tracing::warn!(%error, "a lane could not adopt a connection"),
            }
        })
    });
    if let Err(job) = shared.lanes.dispatch(job) {
        tokio::spawn(job());
    }
}

/// Accepts until `shutdown` turns true.
pub async fn run_explicit(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    if let Some((stream, permit)) = take_slot(&shared, stream, peer, Door::Explicit) {
                        on_a_lane(&shared, stream, permit, move |shared, stream| serve_explicit(shared, stream, peer));
                    }
                }
                Err(error) => tracing::warn!(%error, "explicit listener accept failed"),
            },
        }
    }
}

/// Accepts redirected connections until `shutdown` turns true.
pub async fn run_transparent(
    listener: TcpListener,
    shared: Arc<Shared>,
    original: Arc<dyn OriginalDestination>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    if let Some((stream, permit)) = take_slot(&shared, stream, peer, Door::Transparent) {
                        let original = Arc::clone(&original);
                        on_a_lane(&shared, stream, permit, move |shared, stream| serve_transparent(shared, stream, peer, original));
                    }
                }
                Err(error) => tracing::warn!(%error, "transparent listener accept failed"),
            },
        }
    }
}

fn new_connection(
    shared: Arc<Shared>,
    source_ip: IpAddr,
    sni: Option<String>,
    client_http2: bool,
) -> Arc<ClientConnection> {
    Arc::new(ClientConnection {
        shared,
        source_ip,
        sni,
        client_http2,
    })
}

async fn serve_explicit(shared: Arc<Shared>, stream: ClientSocket<TcpStream>, peer: SocketAddr) {
    let limits = shared.limiter.limits().clone();
    let connection = new_connection(shared, peer.ip(), None, false);
    let service = service_fn(move |request| {
        let connection = Arc::clone(&connection);
        async move { Ok::<_, Infallible>(explicit_request(connection, request).await) }
    });
    if let Err(error) = http1_server(&limits)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await
    {
        tracing::debug!(%error, "explicit connection ended");
    }
}

async fn explicit_request(
    connection: Arc<ClientConnection>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let shared = Arc::clone(&connection.shared);
    let source_ip = connection.source_ip;
    if request.method() == Method::CONNECT {
        return connect(shared, source_ip, request);
    }
    match plain_http_target(&request) {
        Some(target) => handle(connection, target, request).await,
        None => {
            let facts = BlockFacts {
                source_ip,
                session: None,
                host: None,
                method: Some(request.method().as_str()),
                path: None,
            };
            refuse(
                &shared,
                facts,
                Refusal::bad_request(
                    "send https through CONNECT, or plain http with an absolute URI",
                ),
            )
        }
    }
}

/// `CONNECT host:port`: admitted like any request, then the tunnel is served as TLS.
fn connect(
    shared: Arc<Shared>,
    source_ip: IpAddr,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let authority = request
        .uri()
        .authority()
        .map(|authority| authority.as_str().to_owned())
        .unwrap_or_default();
    let Some((host, port)) = parse_authority(&authority) else {
        let facts = BlockFacts {
            source_ip,
            session: None,
            host: None,
            method: Some("CONNECT"),
            path: None,
        };
        return refuse(
            &shared,
            facts,
            Refusal::bad_request("CONNECT needs a host:port target"),
        );
    };
    let target = Target {
        scheme: Scheme::Https,
        host,
        port: port.unwrap_or(443),
    };
    let admission = Admission {
        source_ip,
        target: &target,
        authority: Authority::Claimed(None),
        sni: None,
        method: Some("CONNECT"),
        path: None,
    };
    if let Err(refusal) = admit(&shared, &admission) {
        return refusal_response(&refusal);
    }
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                serve_tls(
                    shared,
                    TokioIo::new(upgraded),
                    source_ip,
                    TlsTarget::Connect(target),
                )
                .await
            }
            Err(error) => tracing::debug!(%error, "connect upgrade failed"),
        }
    });
    let mut response = Response::new(empty_body());
    *response.status_mut() = StatusCode::OK;
    response
}

/// The leaf for `target`, minted only after the policy admitted the source and the host, and
/// only within the source's mint rate. `None`: refused (reported) or failed.
async fn leaf_for(
    shared: &Shared,
    source_ip: IpAddr,
    target: &Target,
    admit_first: bool,
) -> Option<Arc<rustls::ServerConfig>> {
    let admission = Admission {
        source_ip,
        target,
        authority: Authority::Claimed(None),
        sni: None,
        method: None,
        path: None,
    };
    if admit_first && admit(shared, &admission).is_err() {
        return None;
    }
    if shared.leaves.cached(&target.host).is_none() {
        if let Err(refusal) = shared.limiter.allow_mint(source_ip, Instant::now()) {
            let session = shared.registry.lookup(source_ip);
            admission.report(shared, session.as_deref(), &refusal);
            return None;
        }
    }
    match shared.leaves.server_config(&target.host).await {
        Ok(config) => Some(config),
        Err(error) => {
            tracing::warn!(host = %target.host, %error, "leaf certificate unavailable");
            None
        }
    }
}

async fn serve_tls<IO>(shared: Arc<Shared>, io: IO, source_ip: IpAddr, tls_target: TlsTarget)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handshake_timeout = shared.limiter.limits().handshake_timeout;
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
    let start = match tokio::time::timeout(handshake_timeout, acceptor).await {
        Ok(Ok(start)) => start,
        Err(_) => {
            shared.metrics.timed_out();
            tracing::debug!(%source_ip, "tls client hello timed out");
            return;
        }
        Ok(Err(error)) => {
            tracing::debug!(%source_ip, %error, "tls client hello failed");
            return;
        }
    };
    let sni = start
        .client_hello()
        .server_name()
        .map(osb_proto::host_pattern::normalise_host);
    let (target, sni_to_check, admit_first) = match tls_target {
        TlsTarget::Connect(target) => (target, sni, false),
        TlsTarget::Transparent { port, original_ip } => {
            let host = sni.unwrap_or_else(|| original_ip.to_string());
            let target = Target {
                scheme: Scheme::Https,
                host,
                port,
            };
            (target, None, true)
        }
    };
    let Some(config) = leaf_for(&shared, source_ip, &target, admit_first).await else {
        // No certificate for a refused (or failed) host: finish the handshake with a TLS
        // `access_denied` alert, the refusal a client can show without trusting anything.
        let refusing = crate::cert_cache::refusing_config();
        let _ = tokio::time::timeout(handshake_timeout, start.into_stream(refusing)).await;
        return;
    };
    let mut tls = match tokio::time::timeout(handshake_timeout, start.into_stream(config)).await {
        Ok(Ok(tls)) => tls,
        Err(_) => {
            shared.metrics.timed_out();
            tracing::debug!(%source_ip, host = %target.host, "tls handshake with sandbox timed out");
            return;
        }
        Ok(Err(error)) => {
            tracing::debug!(%source_ip, host = %target.host, %error, "tls handshake with sandbox failed");
            return;
        }
    };
    crate::tls_buffers::widen_send_queue(tls.get_mut().1);
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let client_http2 = alpn.as_deref() == Some(b"h2");
    if shared.express && !client_http2 {
        let client = crate::express::ExpressClient {
            shared,
            source_ip,
            target,
            sni: sni_to_check,
            alpn,
        };
        client.serve(tls).await;
        return;
    }
    serve_hyper(shared, tls, source_ip, target, sni_to_check, alpn).await;
}

async fn serve_transparent(
    shared: Arc<Shared>,
    stream: ClientSocket<TcpStream>,
    peer: SocketAddr,
    original: Arc<dyn OriginalDestination>,
) {
    let destination = match original.original_destination(stream.get_ref()) {
        Ok(destination) => destination,
        Err(error) => {
            tracing::warn!(source_ip = %peer.ip(), %error, "original destination unknown; connection dropped");
            return;
        }
    };
    let limits = shared.limiter.limits().clone();
    let mut first = [0u8; 1];
    let is_tls =
        match tokio::time::timeout(limits.handshake_timeout, stream.get_ref().peek(&mut first))
            .await
        {
            Ok(Ok(1)) => first[0] == 0x16,
            Ok(_) => return,
            Err(_) => {
                shared.metrics.timed_out();
                tracing::debug!(source_ip = %peer.ip(), "nothing sent on a redirected connection");
                return;
            }
        };
    if is_tls {
        let tls_target = TlsTarget::Transparent {
            port: destination.port(),
            original_ip: destination.ip(),
        };
        serve_tls(shared, stream, peer.ip(), tls_target).await;
        return;
    }
    let connection = new_connection(shared, peer.ip(), None, false);
    let port = destination.port();
    let service = service_fn(move |request: Request<Incoming>| {
        let connection = Arc::clone(&connection);
        async move {
            let host = request
                .headers()
                .get(http::header::HOST)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_authority);
            let response = match host {
                Some((host, _)) => {
                    handle(
                        connection,
                        Target {
                            scheme: Scheme::Http,
                            host,
                            port,
                        },
                        request,
                    )
                    .await
                }
                None => {
                    let facts = BlockFacts {
                        source_ip: connection.source_ip,
                        session: None,
                        host: None,
                        method: Some(request.method().as_str()),
                        path: None,
                    };
                    refuse(
                        &connection.shared,
                        facts,
                        Refusal::bad_request("plain http needs a Host header"),
                    )
                }
            };
            Ok::<_, Infallible>(response)
        }
    });
    if let Err(error) = http1_server(&limits)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await
    {
        tracing::debug!(%error, "transparent http connection ended");
    }
}
