//! The floor of a TLS-terminating proxy, for the keep-alive CPU comparison (issue 11): an
//! explicit proxy that answers `CONNECT`, terminates the client's TLS with a fixed certificate,
//! opens TLS to the origin and copies plaintext both ways — the same tokio, rustls and ring the
//! sealing proxy uses, but no HTTP parsing, no policy, no substitution and no scrubbing. What it
//! costs per request beyond the bare tunnel (the kit's B1t) is what terminating TLS on both legs
//! costs; whatever the sealing proxy costs beyond it is the HTTP-aware work. It serves loopback
//! origins only and is never part of the product.
//!
//! ```text
//! bench_tls_floor --listen 127.0.0.1:18093 --cert origin.crt --key origin.key \
//!     --upstream-ca origin-ca.pem [--workers 2]
//! ```
//! The certificate must be valid for the origin's host name and trusted by the client (the peer
//! kit's `origin.crt` for `localhost` is).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/args.rs"]
mod args;

use args::{argument, runtime};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Twice a body read, as the sealing proxy sets it (`tls_buffers`).
const SEND_LIMIT: usize = 128 * 1024;

fn required(name: &str) -> Result<String, String> {
    argument(name).ok_or_else(|| format!("{name} is required"))
}

fn read_pem(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

struct Floor {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

fn configs() -> Result<Floor, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = rustls_pemfile::certs(&mut read_pem(&required("--cert")?)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--cert: {e}"))?;
    let key = rustls_pemfile::private_key(&mut read_pem(&required("--key")?)?.as_slice())
        .map_err(|e| format!("--key: {e}"))?
        .ok_or("--key holds no private key")?;
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("--cert/--key: {e}"))?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut read_pem(&required("--upstream-ca")?)?.as_slice()) {
        roots
            .add(cert.map_err(|e| format!("--upstream-ca: {e}"))?)
            .map_err(|e| format!("--upstream-ca: {e}"))?;
    }
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Floor {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        connector: TlsConnector::from(Arc::new(client)),
    })
}

/// Reads the `CONNECT host:port` head and returns the authority; only loopback origins.
async fn read_connect(client: &mut TcpStream) -> Result<(String, u16), String> {
    let mut head = Vec::with_capacity(512);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8 * 1024
            || client
                .read_buf(&mut head)
                .await
                .map_err(|e| e.to_string())?
                == 0
        {
            return Err("no CONNECT head".into());
        }
    }
    let line = std::str::from_utf8(&head).map_err(|e| e.to_string())?;
    let authority = line
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split(' ').next())
        .ok_or("not a CONNECT")?;
    let (host, port) = authority.rsplit_once(':').ok_or("no port")?;
    if host != "localhost" && host != "127.0.0.1" {
        return Err(format!("{host} is not a loopback origin"));
    }
    Ok((host.to_string(), port.parse().map_err(|_| "bad port")?))
}

async fn serve(floor: Arc<Floor>, mut client: TcpStream) -> Result<(), String> {
    let (host, port) = read_connect(&mut client).await?;
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut inner = floor
        .acceptor
        .accept(client)
        .await
        .map_err(|e| e.to_string())?;
    inner.get_mut().1.set_buffer_limit(Some(SEND_LIMIT));
    let upstream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|e| e.to_string())?;
    upstream.set_nodelay(true).map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host).map_err(|e| e.to_string())?;
    let mut outer = floor
        .connector
        .connect(name, upstream)
        .await
        .map_err(|e| e.to_string())?;
    outer.get_mut().1.set_buffer_limit(Some(SEND_LIMIT));
    tokio::io::copy_bidirectional(&mut inner, &mut outer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> Result<(), String> {
    let listen: SocketAddr = argument("--listen")
        .unwrap_or_else(|| "127.0.0.1:18093".into())
        .parse()
        .map_err(|e| format!("--listen: {e}"))?;
    let floor = Arc::new(configs()?);
    let runtime = runtime()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen).await.map_err(|e| e.to_string())?;
        eprintln!("tls floor listening on {listen}");
        loop {
            let (client, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let _ = client.set_nodelay(true);
            let floor = Arc::clone(&floor);
            tokio::spawn(async move {
                if let Err(error) = serve(floor, client).await {
                    eprintln!("connection: {error}");
                }
            });
        }
    })
}
