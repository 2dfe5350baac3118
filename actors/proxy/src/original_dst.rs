//! Where a redirected connection was originally going. The real implementation asks the kernel
//! (`SO_ORIGINAL_DST`, set by the nftables/iptables redirect); tests inject a fixed answer through
//! the [`OriginalDestination`] trait. It must never guess a destination.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use tokio::net::TcpStream;

/// Source of the original destination of a redirected connection.
pub trait OriginalDestination: Send + Sync + fmt::Debug {
    fn original_destination(&self, stream: &TcpStream) -> std::io::Result<SocketAddr>;
}

/// Asks the kernel with `SO_ORIGINAL_DST` (IPv4 redirects).
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelOriginalDestination;

impl OriginalDestination for KernelOriginalDestination {
    fn original_destination(&self, stream: &TcpStream) -> std::io::Result<SocketAddr> {
        let raw = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::OriginalDst)
            .map_err(std::io::Error::from)?;
        let ip = Ipv4Addr::from(u32::from_be(raw.sin_addr.s_addr));
        let port = u16::from_be(raw.sin_port);
        Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
    }
}

/// Always answers the same address (tests, and single-upstream deployments).
#[derive(Debug, Clone, Copy)]
pub struct FixedOriginalDestination(pub SocketAddr);

impl OriginalDestination for FixedOriginalDestination {
    fn original_destination(&self, _stream: &TcpStream) -> std::io::Result<SocketAddr> {
        Ok(self.0)
    }
}
