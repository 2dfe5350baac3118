//! Integration tests of the gRPC link: mutual TLS 1.3 between a control-plane client and a
//! worker server with certificates from the PKI, and every way a peer must be refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod grpc_mtls;
