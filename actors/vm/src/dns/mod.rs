//! The worker's sandbox resolver: a minimal DNS server that answers only names on the asking
//! sandbox's allowlist (identified by source address), with an address that routes out of the
//! sandbox into the proxy redirect, and NXDOMAIN otherwise, reporting every refused name as an
//! `egress_blocked` event (at most once per name and sandbox every few seconds, within a
//! per-sandbox report budget, in fixed memory; names made printable and token-free by
//! `osb_proto::display_safe` before they reach a log or an event). It never forwards a query
//! upstream and never answers with a private or loopback address of the real host: the proxy
//! resolves real hosts itself.

pub mod dedupe;
pub mod policy;
pub mod server;
pub mod wire;

pub use policy::{Decision, PolicyTable, SandboxPolicy};
pub use server::Resolver;
