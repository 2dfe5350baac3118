//! The resolver's UDP loop: receive, look up the source's policy, answer, report blocked names.
//! It runs on the worker's tokio runtime and stops when its handle is dropped. It must never
//! forward a query or answer a source that is not one of this worker's sandboxes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::dns::dedupe::{ReportLimiter, REPORT_WINDOW};
use crate::dns::policy::{decide, Decision, PolicyTable};
use crate::dns::wire::{
    build_response, format_error, parse_query, RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_REFUSED,
};
use crate::error::RuntimeError;
use crate::events::{EventSink, SandboxEvent, SandboxEventKind};

/// A running resolver; dropping it stops the loop.
#[derive(Debug)]
pub struct Resolver {
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl Resolver {
    /// Binds `bind` and starts answering.
    pub async fn start(
        bind: SocketAddr,
        policies: Arc<PolicyTable>,
        answer: Ipv4Addr,
        sink: Arc<dyn EventSink>,
    ) -> Result<Self, RuntimeError> {
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| RuntimeError::io(format!("binding the sandbox resolver on {bind}"), e))?;
        let local = socket
            .local_addr()
            .map_err(|e| RuntimeError::io("reading the resolver address", e))?;
        let task = tokio::spawn(serve(socket, policies, answer, sink));
        Ok(Self { local, task })
    }

    /// The bound address (its port goes into the redirect rules).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    socket: UdpSocket,
    policies: Arc<PolicyTable>,
    answer: Ipv4Addr,
    sink: Arc<dyn EventSink>,
) {
    let mut buffer = vec![0u8; 1500];
    let mut limiter = ReportLimiter::new(REPORT_WINDOW);
    loop {
        let (length, peer) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                tracing::warn!(error = %error, "sandbox resolver receive failed");
                continue;
            }
        };
        let packet = &buffer[..length];
        let IpAddr::V4(source) = peer.ip() else {
            continue;
        };
        let Some(query) = parse_query(packet) else {
            if let Some(reply) = format_error(packet) {
                let _ = socket.send_to(&reply, peer).await;
            }
            continue;
        };
        let policy = policies.get(source);
        let reply = match decide(policy.as_ref(), &query, answer) {
            Decision::Allowed(record) => build_response(packet, &query, RCODE_NOERROR, record),
            Decision::Blocked => {
                let report = policy.as_ref().filter(|policy| {
                    limiter.should_report(
                        policy.sandbox_id,
                        &query.name,
                        &policy.report_budget,
                        std::time::Instant::now(),
                    )
                });
                if let Some(policy) = report {
                    // The name is the sandbox's choice: never log or publish it raw.
                    let host = osb_proto::display_safe(query.name.as_bytes());
                    tracing::info!(sandbox_id = %policy.sandbox_id, host = %host, "dns name not on allowlist");
                    sink.publish(SandboxEvent::now(
                        policy.sandbox_id,
                        SandboxEventKind::EgressBlocked {
                            host,
                            via: "dns".to_owned(),
                        },
                    ));
                }
                build_response(packet, &query, RCODE_NXDOMAIN, None)
            }
            Decision::UnknownSource => build_response(packet, &query, RCODE_REFUSED, None),
        };
        let _ = socket.send_to(&reply, peer).await;
    }
}
