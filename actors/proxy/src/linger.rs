//! A client connection's socket (ADR 0114): it holds the connection's slot in the limiter for as
//! long as the socket lives — whichever task owns it by then (the front door, a CONNECT tunnel's
//! TLS session, a WebSocket relay) — and it closes the way Apache and nginx do, with a
//! *lingering close*. When the proxy refuses a request before reading its body and then closes,
//! the client may still be writing that body; closing a socket with unread bytes makes the kernel
//! answer with a reset, and a client busy writing sees "broken pipe" or "connection reset"
//! instead of the refusal that already reached it. So `poll_shutdown` first shuts the write half
//! (the client reads the answer and then an orderly end), then reads and throws away what the
//! client still sends until it closes too, or until [`LingerBounds`] (bytes and time) run out;
//! only then does the caller drop the socket.
//!
//! Every layer above — TLS, hyper, the express lane — shuts down through here, so both front
//! ends and both doors linger the same way. What this type reads while lingering is below TLS
//! and HTTP: it is counted and dropped, and it must never be parsed, decrypted, forwarded,
//! scanned or logged. A lingering socket still holds its slot, so lingering can never let a
//! sandbox hold more connections than its cap.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::limits::ConnectionPermit;
use crate::metrics::ProxyMetrics;

/// Bytes read per discarding read while lingering (on the stack, never kept).
const DISCARD_READ: usize = 16 * 1024;

/// How much a closing socket reads and throws away at most, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LingerBounds {
    /// Bytes discarded after the write half was shut, at most.
    pub bytes: usize,
    /// Time from the shutdown of the write half to the close, at most.
    pub time: Duration,
}

/// Where the socket is in its close.
enum Closing {
    Open,
    Lingering {
        deadline: Pin<Box<Sleep>>,
        discarded: usize,
    },
    Closed,
}

/// How a linger ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LingerEnd {
    /// The client closed (or reset) its side: nothing more will arrive.
    ClientDone,
    /// A bound ran out while the client was still sending (or silent but open).
    Cut,
}

/// A client connection's socket: its slot, and its lingering close.
pub(crate) struct ClientSocket<IO> {
    io: IO,
    closing: Closing,
    bounds: LingerBounds,
    metrics: Arc<ProxyMetrics>,
    /// The connection's slot: given back when the socket is dropped, not before.
    _slot: Option<ConnectionPermit>,
}

impl<IO> ClientSocket<IO> {
    pub(crate) fn new(
        io: IO,
        slot: Option<ConnectionPermit>,
        bounds: LingerBounds,
        metrics: Arc<ProxyMetrics>,
    ) -> Self {
        Self {
            io,
            closing: Closing::Open,
            bounds,
            metrics,
            _slot: slot,
        }
    }

    /// The socket itself (for the original destination and the pre-TLS peek).
    pub(crate) fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO> std::fmt::Debug for ClientSocket<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let closing = match self.closing {
            Closing::Open => "open",
            Closing::Lingering { .. } => "lingering",
            Closing::Closed => "closed",
        };
        f.debug_struct("ClientSocket")
            .field("closing", &closing)
            .field("bounds", &self.bounds)
            .finish_non_exhaustive()
    }
}

/// Reads and discards what is ready, up to `limit` bytes in all; `None` while more may come.
fn discard_ready<IO: AsyncRead + Unpin>(
    io: &mut IO,
    cx: &mut Context<'_>,
    discarded: &mut usize,
    limit: usize,
) -> Option<LingerEnd> {
    let mut scratch = [0u8; DISCARD_READ];
    loop {
        if *discarded >= limit {
            return Some(LingerEnd::Cut);
        }
        let room = (limit - *discarded).min(DISCARD_READ);
        let mut read = ReadBuf::new(&mut scratch[..room]);
        match Pin::new(&mut *io).poll_read(cx, &mut read) {
            Poll::Pending => return None,
            // A reset or an error: nothing more can arrive.
            Poll::Ready(Err(_)) => return Some(LingerEnd::ClientDone),
            Poll::Ready(Ok(())) if read.filled().is_empty() => return Some(LingerEnd::ClientDone),
            Poll::Ready(Ok(())) => *discarded += read.filled().len(),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for ClientSocket<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ClientSocket<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Shuts the write half, then lingers: reads and discards until the client closes or a
    /// bound runs out. Ready means the caller may drop the socket without resetting anything
    /// the client still needs to read.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.closing {
                Closing::Open => {
                    if let Err(error) = ready!(Pin::new(&mut this.io).poll_shutdown(cx)) {
                        this.closing = Closing::Closed;
                        return Poll::Ready(Err(error));
                    }
                    this.closing = Closing::Lingering {
                        deadline: Box::pin(tokio::time::sleep(this.bounds.time)),
                        discarded: 0,
                    };
                }
                Closing::Lingering {
                    deadline,
                    discarded,
                } => {
                    let end = match discard_ready(&mut this.io, cx, discarded, this.bounds.bytes) {
                        Some(end) => end,
                        None if deadline.as_mut().poll(cx).is_ready() => LingerEnd::Cut,
                        None => return Poll::Pending,
                    };
                    this.metrics
                        .lingered(*discarded as u64, end == LingerEnd::Cut);
                    this.closing = Closing::Closed;
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests;
