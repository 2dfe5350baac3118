//! Integration tests of the sealing proxy: real clients (curl, Python urllib, a Rust hyper client)
//! from distinct 127.0.0.x "sandbox" addresses, through the proxy, to a local TLS origin.

// Test code: a failed unwrap is a failed test with its message.
#![allow(clippy::unwrap_used)]

mod support {
    pub mod client;
    pub mod closing_origin;
    pub mod harness;
    pub mod hostile_origin;
    pub mod origin;
    pub mod raw_origin;
    pub mod uploader;
    pub mod ws;
}

mod abort;
mod actor;
mod canary;
mod echoes;
mod express;
mod keep_alive;
mod limits;
mod lingering;
mod memory;
mod minting;
mod oracle;
mod original_dst;
mod protocols;
mod refusals;
mod ssrf;
mod substitution;
mod timeouts;
mod token_places;
mod websocket;
