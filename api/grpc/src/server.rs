//! The worker's gRPC server: binds, completes each TLS handshake (TLS 1.3, client certificate
//! from the CA with the `control` role) off the accept loop, and hands tonic only connections
//! that passed, each tagged with a [`GrpcPeer`] so a handler knows which control plane calls.
//! Plaintext runs only on a loopback address in the explicit development mode. This module must
//! never serve a connection whose handshake failed, nor log a request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use osb_proto::grpc::worker_server::{Worker, WorkerServer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::error::GrpcError;
use super::identity::{PeerIdentity, PeerRole};
use super::io::{ServerIo, Stream};
use super::tls::GrpcSecurity;

/// How long a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections handshaken but not yet taken by tonic.
const ACCEPT_BACKLOG: usize = 64;

/// Who is calling: the TCP peer and, with mutual TLS, its verified identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcPeer {
    remote_addr: SocketAddr,
    identity: Option<PeerIdentity>,
}

impl GrpcPeer {
    /// The caller's socket address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    /// The caller's verified identity (`None` only in the plaintext loopback mode).
    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.identity.as_ref()
    }
}

/// The peer of a request served by [`serve_worker`].
pub fn grpc_peer<T>(request: &tonic::Request<T>) -> Option<&GrpcPeer> {
    request.extensions().get::<GrpcPeer>()
}

/// A running worker server. Dropping the handle stops it as well; [`Self::shutdown`] also
/// waits for in-flight calls to finish.
#[derive(Debug)]
pub struct WorkerServerHandle {
    local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl WorkerServerHandle {
    /// The bound address (useful when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets in-flight calls finish and waits for the server to end.
    pub async fn shutdown(mut self) -> Result<(), GrpcError> {
        if let Some(shutdown) = self.shutdown.take() {
            // The server may already have stopped; then there is nobody to tell.
            let _ = shutdown.send(());
        }
        (&mut self.task).await?.map_err(GrpcError::Serve)
    }
}

/// Starts serving `service` on `addr` with `security`. With mutual TLS this process's
/// certificate must be a worker's and only control-plane clients are accepted; in plaintext
/// mode `addr` must be loopback.
pub async fn serve_worker<S: Worker>(
    addr: SocketAddr,
    security: &GrpcSecurity,
    service: S,
) -> Result<WorkerServerHandle, GrpcError> {
    let acceptor = match security {
        GrpcSecurity::MutualTls(material) => {
            material.require_role(PeerRole::Worker)?;
            Some(TlsAcceptor::from(Arc::new(
                material.server_config(PeerRole::Control)?,
            )))
        }
        GrpcSecurity::InsecureLoopback if addr.ip().is_loopback() => None,
        GrpcSecurity::InsecureLoopback => {
            return Err(GrpcError::PlaintextNotLoopback {
                address: addr.to_string(),
            })
        }
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| GrpcError::Bind {
            address: addr,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| GrpcError::Bind {
        address: addr,
        source,
    })?;
    let (connections, mut accepted) = mpsc::channel::<ServerIo>(ACCEPT_BACKLOG);
    tokio::spawn(accept_loop(listener, acceptor, connections));
    let incoming = futures_util::stream::poll_fn(move |cx| {
        accepted
            .poll_recv(cx)
            .map(|next| next.map(Ok::<_, std::io::Error>))
    });
    let (shutdown, stop) = oneshot::channel::<()>();
    let task = tokio::spawn(
        tonic::transport::Server::builder().serve_with_incoming_shutdown(
            WorkerServer::new(service),
            incoming,
            async move {
                // Either an explicit shutdown or the handle being dropped.
                let _ = stop.await;
            },
        ),
    );
    tracing::info!(address = %local_addr, tls = acceptor_kind(security), "worker grpc server listening");
    Ok(WorkerServerHandle {
        local_addr,
        shutdown: Some(shutdown),
        task,
    })
}

fn acceptor_kind(security: &GrpcSecurity) -> &'static str {
    match security {
        GrpcSecurity::MutualTls(_) => "mutual-tls-1.3",
        GrpcSecurity::InsecureLoopback => "plaintext-loopback",
    }
}

/// Accepts until tonic stops taking connections, handshaking each on its own task so one slow
/// or hostile client cannot hold up the others.
async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    connections: mpsc::Sender<ServerIo>,
) {
    loop {
        let accepted = tokio::select! {
            () = connections.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote_addr) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(%error, "grpc accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let connections = connections.clone();
        tokio::spawn(async move {
            match handshake(tcp, remote_addr, acceptor).await {
                Ok(connection) => {
                    // Tonic has stopped when this fails; the connection is simply dropped.
                    let _ = connections.send(connection).await;
                }
                Err(reason) => {
                    tracing::warn!(remote = %remote_addr, %reason, "grpc connection refused");
                }
            }
        });
    }
}

async fn handshake(
    tcp: TcpStream,
    remote_addr: SocketAddr,
    acceptor: Option<TlsAcceptor>,
) -> Result<ServerIo, String> {
    // Small request/response frames: do not let Nagle delay them.
    let _ = tcp.set_nodelay(true);
    let Some(acceptor) = acceptor else {
        return Ok(ServerIo {
            stream: Stream::Plain(tcp),
            peer: GrpcPeer {
                remote_addr,
                identity: None,
            },
        });
    };
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| "tls handshake timed out".to_owned())?
        .map_err(|error| format!("tls handshake failed: {error}"))?;
    // The verifier has already checked chain and role; read the identity for the handlers.
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| "no client certificate after the handshake".to_owned())
        .and_then(|leaf| {
            PeerIdentity::from_certificate_der(leaf.as_ref()).map_err(|error| error.to_string())
        })?;
    Ok(ServerIo {
        stream: Stream::Tls(Box::new(tls)),
        peer: GrpcPeer {
            remote_addr,
            identity: Some(identity),
        },
    })
}
