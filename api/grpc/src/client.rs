//! The control plane's connection to one worker: a tonic channel whose connector dials TCP and
//! runs the TLS 1.3 handshake with this process's control-plane certificate, accepting only a
//! worker certificate from the CA (and, when asked, of one exact worker name). Plaintext is
//! dialled only to loopback addresses in the explicit development mode. Reconnects go through the
//! same checks. This module must never dial a worker without these checks.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use osb_proto::grpc::worker_client::WorkerClient;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};

use super::error::GrpcError;
use super::identity::{PeerIdentity, PeerRole};
use super::io::{ClientIo, Stream};
use super::tls::GrpcSecurity;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected worker client and the identity the worker proved in its handshake.
#[derive(Debug, Clone)]
pub struct WorkerConnection {
    /// The generated client; clone it freely (it multiplexes one HTTP/2 connection).
    pub client: WorkerClient<Channel>,
    /// The worker's verified identity (`None` in the plaintext loopback mode).
    pub worker: Option<PeerIdentity>,
}

/// Connects to the worker at `target` (`host:port`). With mutual TLS this process's certificate
/// must be a control plane's, the server must present a worker certificate from the CA, and if
/// `expected_worker` is given its name must match exactly.
pub async fn connect_worker(
    target: &str,
    security: &GrpcSecurity,
    expected_worker: Option<&str>,
) -> Result<WorkerConnection, GrpcError> {
    let bad_target = || GrpcError::BadTarget {
        target: target.chars().take(200).collect(),
    };
    let (host, _port) = target.rsplit_once(':').ok_or_else(bad_target)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tls = match security {
        GrpcSecurity::MutualTls(material) => {
            material.require_role(PeerRole::Control)?;
            let config = material.client_config(PeerRole::Worker, expected_worker)?;
            let server_name = ServerName::try_from(host.to_owned()).map_err(|_| bad_target())?;
            Some((TlsConnector::from(Arc::new(config)), server_name))
        }
        GrpcSecurity::InsecureLoopback => {
            resolve_loopback_only(target).await?;
            None
        }
    };
    let seen = Arc::new(Mutex::new(None));
    let connector = WorkerConnector {
        target: target.to_owned(),
        tls,
        seen: seen.clone(),
    };
    let endpoint = Endpoint::from_shared(format!("http://{target}"))
        .map_err(|_| bad_target())?
        .connect_timeout(CONNECT_TIMEOUT);
    let channel = endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|source| GrpcError::Connect {
            target: target.to_owned(),
            source,
        })?;
    let worker = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(WorkerConnection {
        client: WorkerClient::new(channel),
        worker,
    })
}

async fn resolve_loopback_only(target: &str) -> Result<Vec<SocketAddr>, GrpcError> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host(target)
        .await
        .map_err(|_| GrpcError::BadTarget {
            target: target.to_owned(),
        })?
        .collect();
    if addresses.is_empty() || addresses.iter().any(|address| !address.ip().is_loopback()) {
        return Err(GrpcError::PlaintextNotLoopback {
            address: target.to_owned(),
        });
    }
    Ok(addresses)
}

/// Dials one worker for tonic (first connect and every reconnect).
#[derive(Clone)]
struct WorkerConnector {
    target: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    seen: Arc<Mutex<Option<PeerIdentity>>>,
}

type DialFuture = Pin<Box<dyn Future<Output = io::Result<TokioIo<ClientIo>>> + Send>>;

impl tonic::codegen::Service<Uri> for WorkerConnector {
    type Response = TokioIo<ClientIo>;
    type Error = io::Error;
    type Future = DialFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.dial().await.map(TokioIo::new) })
    }
}

impl WorkerConnector {
    async fn dial(self) -> io::Result<ClientIo> {
        let Some((connector, server_name)) = self.tls else {
            // Resolved again on every dial: a name that now points elsewhere is refused.
            let addresses = resolve_loopback_only(&self.target).await.map_err(|error| {
                io::Error::new(io::ErrorKind::PermissionDenied, error.to_string())
            })?;
            let tcp = TcpStream::connect(&addresses[..]).await?;
            let _ = tcp.set_nodelay(true);
            return Ok(Stream::Plain(tcp));
        };
        let tcp = TcpStream::connect(&self.target).await?;
        let _ = tcp.set_nodelay(true);
        let tls = connector.connect(server_name, tcp).await?;
        let identity = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| PeerIdentity::from_certificate_der(leaf.as_ref()).ok());
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = identity;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

impl std::fmt::Debug for WorkerConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConnector")
            .field("target", &self.target)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}
