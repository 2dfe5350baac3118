//! The control plane ↔ worker gRPC link: configuration of its mutual TLS from the environment,
//! peer identities carried in certificates, the worker server builder, the control-plane client
//! connector and the PKI minting behind `osbd certs`. The wire types come from
//! `osb_proto::grpc` (re-exported as [`proto`]); the real worker service is `osb-worker`'s,
//! the client side is `osb-control`'s. This crate is the only door to rcgen for the gRPC PKI.
//!
//! This link is the only path for plaintext secret values, so it fails closed: it never falls
//! back to plaintext on a partial TLS configuration, never speaks anything but TLS 1.3, never
//! accepts a peer without a certificate from the configured CA and the right role, and never
//! logs a request (requests may carry values). It knows nothing of the store, the bus or
//! actix: it must never depend on them (a workspace test checks the manifests).

#![forbid(unsafe_code)]

mod client;
mod config;
mod error;
mod identity;
mod io;
pub mod pki;
mod server;
mod tls;
mod verify;
mod wire;

pub use client::{connect_worker, WorkerConnection};
pub use config::{
    GrpcSecurityConfig, TlsPaths, INSECURE_LOOPBACK_ENV, TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV,
};
pub use error::{GrpcConfigError, GrpcError};
pub use identity::{IdentityError, PeerIdentity, PeerRole, IDENTITY_URI_PREFIX};
pub use server::{grpc_peer, serve_worker, GrpcPeer, WorkerServerHandle};
pub use tls::{GrpcSecurity, TlsMaterial};
pub use wire::parse_id;

pub use osb_proto::grpc as proto;
