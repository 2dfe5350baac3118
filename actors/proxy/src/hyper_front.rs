//! The hyper front end: serves a decrypted (or plain) client connection with hyper's HTTP/1.1 or
//! HTTP/2 server, every request going to [`crate::handler::handle`], with the limits of
//! [`crate::limits::Limits`] applied — head timeout and size, concurrent streams, pending resets
//! (rapid reset), header list size (CONTINUATION floods), and an idle timeout that closes an
//! HTTP/2 connection nobody uses. Both listeners and the express lane hand connections here, so
//! neither depends on the other. It must never serve a request without the handler.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::handler::handle;
use crate::limits::Limits;
use crate::policy::Target;
use crate::shared::{ClientConnection, Shared};

/// HTTP/2 flow-control windows and frame size offered to sandboxes: what a connection may have
/// in flight toward the proxy, per stream and in all.
const H2_STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const H2_CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;
const H2_MAX_FRAME: u32 = 64 * 1024;

/// The HTTP/1.1 server settings every front door uses.
pub(crate) fn http1_server(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192) as usize);
    builder
}

fn http2_server(limits: &Limits) -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.max_pending_resets)
        .max_header_list_size(limits.max_header_bytes)
        // Uploads: hyper's 1 MiB windows stalled a 64 MiB h2 upload at half the HTTP/1.1 rate
        // (issue 19); larger windows and frames, still a fixed bound per connection.
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_frame_size(H2_MAX_FRAME)
        .keep_alive_interval(limits.http2_idle_timeout / 2)
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// A connection's I/O that remembers when it last moved a byte (for the idle timeout).
struct Watched<IO> {
    inner: IO,
    last: Arc<AtomicU64>,
    epoch: tokio::time::Instant,
}

impl<IO> Watched<IO> {
    fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Resolves once the connection moved no byte for `idle` while no request was being handled
/// (a request waiting for a slow upstream is not idle; a silent body has its own timeout).
async fn idle_for(
    last: Arc<AtomicU64>,
    active: Arc<AtomicUsize>,
    epoch: tokio::time::Instant,
    idle: Duration,
) {
    loop {
        let last_ms = last.load(Ordering::Relaxed);
        let deadline = epoch + Duration::from_millis(last_ms) + idle;
        tokio::time::sleep_until(deadline).await;
        if last.load(Ordering::Relaxed) == last_ms {
            if active.load(Ordering::Relaxed) == 0 {
                return;
            }
            last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
    }
}

/// Counts a request as being handled until it is dropped.
struct Handling(Arc<AtomicUsize>);

impl Handling {
    fn start(active: &Arc<AtomicUsize>) -> Self {
        active.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(active))
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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
    let limits = shared.limiter.limits().clone();
    let metrics = Arc::clone(&shared.metrics);
    let client_http2 = alpn.as_deref() == Some(b"h2");
    let connection = Arc::new(ClientConnection {
        shared,
        source_ip,
        sni,
        client_http2,
    });
    let active = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&active);
    let service = service_fn(move |request: http::Request<Incoming>| {
        let connection = Arc::clone(&connection);
        let target = target.clone();
        let handling = Handling::start(&counted);
        async move {
            let response = handle(connection, target, request).await;
            drop(handling);
            Ok::<_, Infallible>(response)
        }
    });
    let epoch = tokio::time::Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Watched {
        inner: io,
        last: Arc::clone(&last),
        epoch,
    });
    let idle = idle_for(last, active, epoch, limits.http2_idle_timeout);
    // ALPN already named the protocol; only a client that negotiated none is sniffed.
    let served: Result<(), Box<dyn std::error::Error + Send + Sync>> = match alpn.as_deref() {
        Some(b"h2") => {
            let connection = http2_server(&limits).serve_connection(io, service);
            until_idle(connection, idle, &metrics, |c| c.graceful_shutdown())
                .await
                .unwrap_or(Ok(()))
                .map_err(Into::into)
        }
        Some(_) => {
            let connection = http1_server(&limits)
                .serve_connection(io, service)
                .with_upgrades();
            until_idle(connection, idle, &metrics, |c| c.graceful_shutdown())
                .await
                .unwrap_or(Ok(()))
                .map_err(Into::into)
        }
        None => {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.head_timeout)
                .max_buf_size(limits.max_header_bytes.max(8192) as usize);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(limits.max_concurrent_streams)
                .max_pending_accept_reset_streams(limits.max_pending_resets)
                .max_header_list_size(limits.max_header_bytes);
            let connection = builder.serve_connection_with_upgrades(io, service);
            until_idle(connection, idle, &metrics, |c| c.graceful_shutdown())
                .await
                .unwrap_or(Ok(()))
        }
    };
    if let Err(error) = served {
        tracing::debug!(%source_ip, %error, "client connection ended");
    }
}

/// Drives `connection`; when it stays idle too long, asks it to shut down gracefully and gives it
/// a short grace period (`None`: it did not finish in time and was dropped, which closes it).
async fn until_idle<C, T, E>(
    connection: C,
    idle: impl Future<Output = ()>,
    metrics: &crate::metrics::ProxyMetrics,
    shutdown: impl FnOnce(Pin<&mut C>),
) -> Option<Result<T, E>>
where
    C: Future<Output = Result<T, E>>,
{
    tokio::pin!(connection);
    tokio::pin!(idle);
    tokio::select! {
        served = &mut connection => return Some(served),
        () = &mut idle => {}
    }
    metrics.timed_out();
    shutdown(connection.as_mut());
    tokio::time::timeout(Duration::from_secs(5), &mut connection)
        .await
        .ok()
}
