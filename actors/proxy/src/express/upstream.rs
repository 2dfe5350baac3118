//! A raw upstream connection of the express lane: the verified TLS stream (dialled by the shared
//! [`UpstreamConnector`], so the address policy and certificate checks are the hyper path's) and
//! the bytes read from it but not yet used. Such a connection is pooled per sandbox like every
//! other upstream connection; it must never carry requests of two sandboxes.

use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::policy::Target;
use crate::refusal::Refusal;
use crate::upstream::UpstreamConnector;

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
