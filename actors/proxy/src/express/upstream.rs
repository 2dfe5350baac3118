//! A raw upstream connection of the express lane: the verified TLS stream (dialled by the shared
//! [`UpstreamConnector`], so the address policy and certificate checks are the hyper path's) and
//! the bytes read from it but not yet used. Such a connection is pooled per sandbox like every
//! other upstream connection; it must never carry requests of two sandboxes. [`round_trip`]
//! writes one request on it and reads the final response head.

use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::policy::Target;
use crate::refusal::Refusal;
use crate::upstream::UpstreamConnector;

use super::{read_more, UpstreamError};

/// One HTTP/1.1 connection to an upstream, owned by one exchange at a time.
#[derive(Debug)]
pub struct ExpressUpstream {
    pub(crate) tls: TlsStream<TcpStream>,
    pub(crate) buffer: BytesMut,
}

impl ExpressUpstream {
    /// Dials a new connection offering only HTTP/1.1. Boxed, because it is large and moves
    /// between the pool and the exchanges on every request (profiled: those moves were memcpy).
    pub async fn dial(
        connector: &UpstreamConnector,
        target: &Target,
    ) -> Result<Box<Self>, Refusal> {
        let tls = connector.dial_tls(target, false).await?;
        Ok(Box::new(Self {
            tls,
            buffer: BytesMut::with_capacity(8 * 1024),
        }))
    }

    /// An idle connection is usable only while nothing arrived on it: readable data, decrypted
    /// bytes nobody read, or an end of stream mean the upstream closed it (or broke the
    /// protocol). Uses the reactor's readiness, so it costs no system call.
    pub fn is_quiet(&mut self) -> bool {
        if !self.buffer.is_empty() {
            return false;
        }
        let (tcp, session) = self.tls.get_mut();
        let settled = session
            .process_new_packets()
            .is_ok_and(|state| state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed());
        let mut context = Context::from_waker(Waker::noop());
        settled && matches!(tcp.poll_read_ready(&mut context), Poll::Pending)
    }
}

fn is_lost(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::UnexpectedEof
    )
}

/// Writes the request and reads the final response head (interim 1xx heads are skipped).
pub(super) async fn round_trip(
    upstream: &mut ExpressUpstream,
    wire: &[u8],
    request_was_head: bool,
) -> Result<super::response::ResponseHead, UpstreamError> {
    let written = async {
        upstream.tls.write_all(wire).await?;
        upstream.tls.flush().await
    }
    .await;
    if let Err(error) = written {
        return Err(if is_lost(&error) {
            UpstreamError::Lost(error.to_string())
        } else {
            UpstreamError::Failed(error.to_string())
        });
    }
    read_head(upstream, request_was_head).await
}

/// Reads the final response head of a request already written (interim 1xx heads are skipped).
/// `Lost` means nothing at all came back.
pub(super) async fn read_head(
    upstream: &mut ExpressUpstream,
    request_was_head: bool,
) -> Result<super::response::ResponseHead, UpstreamError> {
    let mut received_any = false;
    loop {
        // Nothing to parse before the first read (a pooled connection's buffer is empty).
        let parsed = match upstream.buffer.is_empty() {
            true => Ok(super::response::Parsed::Partial),
            false => super::response::parse(&upstream.buffer, request_was_head),
        };
        match parsed {
            Ok(super::response::Parsed::Final(head)) => return Ok(head),
            Ok(super::response::Parsed::Interim(length)) => {
                upstream.buffer.advance(length);
                continue;
            }
            Ok(super::response::Parsed::Partial) => {}
            Err(reason) => return Err(UpstreamError::Failed(reason)),
        }
        match read_more(&mut upstream.tls, &mut upstream.buffer).await {
            Ok(0) if !received_any && upstream.buffer.is_empty() => {
                return Err(UpstreamError::Lost(
                    "connection closed before a response".into(),
                ))
            }
            Ok(0) => {
                return Err(UpstreamError::Failed(
                    "connection closed mid-response".into(),
                ))
            }
            Ok(_) => received_any = true,
            Err(error) if !received_any && is_lost(&error) => {
                return Err(UpstreamError::Lost(error.to_string()))
            }
            Err(error) => return Err(UpstreamError::Failed(error.to_string())),
        }
    }
}
