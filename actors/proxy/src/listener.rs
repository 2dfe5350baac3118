//! The two front doors. The explicit listener speaks HTTP/1.1 to clients that honour
//! `HTTPS_PROXY`: `CONNECT host:port` opens a TLS tunnel the proxy terminates with a minted leaf,
//! and absolute-URI requests are plain HTTP. The transparent listener takes redirected tcp/443
//! (TLS, host from SNI) and tcp/80 (host from `Host`), with the port from the original
//! destination. Both hand every request to `handler::handle`. Neither ever tunnels bytes it has
//! not inspected, except after a WebSocket upgrade.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::LazyConfigAcceptor;

use crate::body::{empty_body, ProxyBody};
use crate::handler::{handle, plain_http_target, refuse, BlockFacts, ClientConnection, Shared};
use crate::original_dst::OriginalDestination;
use crate::policy::{parse_authority, Scheme, Target};
use crate::refusal::Refusal;

/// A client that has not sent a complete request head by then is disconnected (slowloris).
pub(crate) const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn downstream_http1() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

/// How a TLS connection's target is known.
#[derive(Debug, Clone)]
enum TlsTarget {
    /// From the CONNECT line; the SNI must agree.
    Connect(Target),
    /// From SNI (or the original destination address without SNI) and the original port.
    Transparent { port: u16, original_ip: IpAddr },
}

/// Serves an accepted connection on a lane (its socket moves to the lane's reactor), or on this
/// runtime when there are no lanes or the socket cannot move.
fn on_a_lane<F, Fut>(shared: &Arc<Shared>, stream: TcpStream, serve: F)
where
    F: FnOnce(Arc<Shared>, TcpStream) -> Fut + Send + 'static,
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
                Ok(stream) => serve(lane_shared, stream).await,
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
                    on_a_lane(&shared, stream, move |shared, stream| serve_explicit(shared, stream, peer));
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
                    let original = Arc::clone(&original);
                    on_a_lane(&shared, stream, move |shared, stream| serve_transparent(shared, stream, peer, original));
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

async fn serve_explicit(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let connection = new_connection(shared, peer.ip(), None, false);
    let service = service_fn(move |request| {
        let connection = Arc::clone(&connection);
        async move { Ok::<_, Infallible>(explicit_request(connection, request).await) }
    });
    if let Err(error) = downstream_http1()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await
    {
        tracing::debug!(%error, "explicit connection ended");
    }
}

fn connect_facts(source_ip: IpAddr, host: Option<&str>) -> BlockFacts<'_> {
    BlockFacts {
        source_ip,
        session: None,
        host,
        method: Some("CONNECT"),
        path: None,
    }
}

async fn explicit_request(
    connection: Arc<ClientConnection>,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let shared = Arc::clone(&connection.shared);
    let source_ip = connection.source_ip;
    if request.method() == Method::CONNECT {
        let authority = request
            .uri()
            .authority()
            .map(|authority| authority.as_str().to_owned())
            .unwrap_or_default();
        let Some((host, port)) = parse_authority(&authority) else {
            return refuse(
                &shared,
                connect_facts(source_ip, None),
                Refusal::bad_request("CONNECT needs a host:port target"),
            );
        };
        let target = Target {
            scheme: Scheme::Https,
            host,
            port: port.unwrap_or(443),
        };
        let session = match shared
            .policy
            .check_source(source_ip, shared.registry.lookup(source_ip))
        {
            Ok(session) => session,
            Err(refusal) => {
                return refuse(
                    &shared,
                    connect_facts(source_ip, Some(&target.host)),
                    refusal,
                )
            }
        };
        if let Err(refusal) = shared
            .policy
            .check_egress(&session, &target.host, target.port)
        {
            let facts = BlockFacts {
                session: Some(&session),
                ..connect_facts(source_ip, Some(&target.host))
            };
            return refuse(&shared, facts, refusal);
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
        return response;
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

async fn serve_tls<IO>(shared: Arc<Shared>, io: IO, source_ip: IpAddr, tls_target: TlsTarget)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
    let start = match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor).await {
        Ok(Ok(start)) => start,
        Err(_) => {
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
    let (target, sni_to_check) = match tls_target {
        TlsTarget::Connect(target) => (target, sni),
        TlsTarget::Transparent { port, original_ip } => {
            let host = sni.unwrap_or_else(|| original_ip.to_string());
            (
                Target {
                    scheme: Scheme::Https,
                    host,
                    port,
                },
                None,
            )
        }
    };
    let config = match shared.leaves.server_config(&target.host).await {
        Ok(config) => config,
        Err(error) => {
            tracing::warn!(host = %target.host, %error, "leaf certificate unavailable");
            return;
        }
    };
    let tls = match tokio::time::timeout(HEADER_READ_TIMEOUT, start.into_stream(config)).await {
        Ok(Ok(tls)) => tls,
        Err(_) => {
            tracing::debug!(%source_ip, host = %target.host, "tls handshake with sandbox timed out");
            return;
        }
        Ok(Err(error)) => {
            tracing::debug!(%source_ip, host = %target.host, %error, "tls handshake with sandbox failed");
            return;
        }
    };
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

/// Serves a decrypted client connection with hyper: HTTP/2 or HTTP/1.1 as ALPN named it, sniffed
/// when the client negotiated none. The express lane hands connections here too, with the bytes
/// it already read put back in front.
pub(crate) async fn serve_hyper<IO>(
    shared: Arc<Shared>,
    io: IO,
    source_ip: IpAddr,
    target: Target,
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let client_http2 = alpn.as_deref() == Some(b"h2");
    let connection = new_connection(shared, source_ip, sni, client_http2);
    let service = service_fn(move |request| {
        let connection = Arc::clone(&connection);
        let target = target.clone();
        async move { Ok::<_, Infallible>(handle(connection, target, request).await) }
    });
    let io = TokioIo::new(io);
    // ALPN already named the protocol; only a client that negotiated none is sniffed.
    let served: Result<(), Box<dyn std::error::Error + Send + Sync>> = match alpn.as_deref() {
        Some(b"h2") => http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .serve_connection(io, service)
            .await
            .map_err(Into::into),
        Some(_) => downstream_http1()
            .serve_connection(io, service)
            .with_upgrades()
            .await
            .map_err(Into::into),
        None => {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            builder.http2().timer(TokioTimer::new());
            builder.serve_connection_with_upgrades(io, service).await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%source_ip, %error, "tls connection ended");
    }
}

async fn serve_transparent(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    original: Arc<dyn OriginalDestination>,
) {
    let destination = match original.original_destination(&stream) {
        Ok(destination) => destination,
        Err(error) => {
            tracing::warn!(source_ip = %peer.ip(), %error, "original destination unknown; connection dropped");
            return;
        }
    };
    let mut first = [0u8; 1];
    let is_tls = match stream.peek(&mut first).await {
        Ok(1) => first[0] == 0x16,
        _ => return,
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
    if let Err(error) = downstream_http1()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await
    {
        tracing::debug!(%error, "transparent http connection ended");
    }
}
