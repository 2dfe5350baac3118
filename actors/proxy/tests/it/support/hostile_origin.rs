//! An origin the attacker controls: every response comes from a handler the test supplies, so a
//! test can stream a body piece by piece (and pause between pieces), send trailers, odd reason
//! phrases, content codings or WebSocket frames. HTTP/1.1 and HTTP/2 (ALPN), with the same
//! certificate as the main test origin, so the proxy trusts it. It never answers on its own.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub type HostileBody = BoxBody<Bytes, Infallible>;
pub type Reply = Pin<Box<dyn Future<Output = Response<HostileBody>> + Send>>;
pub type Handler = Arc<dyn Fn(Request<Incoming>) -> Reply + Send + Sync>;

pub struct HostileOrigin {
    pub addr: SocketAddr,
}

impl HostileOrigin {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

pub async fn start_hostile_origin(
    tls: Arc<rustls::ServerConfig>,
    handler: Handler,
) -> HostileOrigin {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(move |request| {
                    let handler = Arc::clone(&handler);
                    async move { Ok::<_, Infallible>(handler(request).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    HostileOrigin { addr }
}

/// A body the test feeds frame by frame; it ends when the sender is dropped.
pub fn channel_body() -> (mpsc::UnboundedSender<Frame<Bytes>>, HostileBody) {
    let (sender, receiver) = mpsc::unbounded_channel::<Frame<Bytes>>();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|frame| (Ok::<_, Infallible>(frame), receiver))
    });
    (sender, StreamBody::new(stream).boxed())
}

/// A slot through which each request of a test picks up the body the test prepared for it.
#[derive(Default, Clone)]
pub struct BodySlot(Arc<Mutex<Option<HostileBody>>>);

impl BodySlot {
    pub fn put(&self, body: HostileBody) {
        *self.0.lock().unwrap() = Some(body);
    }

    pub fn take(&self) -> HostileBody {
        self.0
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| http_body_util::Empty::new().boxed())
    }
}

pub fn full(bytes: impl Into<Bytes>) -> HostileBody {
    http_body_util::Full::new(bytes.into()).boxed()
}
