//! The sealing MITM proxy of a worker: sandboxes send HTTPS (and allowlisted plain HTTP) through
//! it, and it swaps each sandbox's sealed tokens (`osb_sealed_…`) for the real secret values — only
//! toward hosts the secret allows — and scrubs the values back out of responses. The data plane is
//! plain tokio + hyper + rustls; [`actor::ProxyActor`] is a thin actix control shell over it.
//!
//! This crate must never let a secret value reach a log, an event, an error, a `Debug` string, a
//! response the sandbox receives, or a host the secret does not allow; and it never forwards a
//! foreign or unknown token.

#![forbid(unsafe_code)]

pub mod policy;
pub mod refusal;
pub mod registry;
pub mod replacer;
pub mod scrubber;
pub mod secret_value;
pub mod session;

pub use policy::{AddressPolicy, Scheme, SealingPolicy, Target};
pub use refusal::Refusal;
pub use registry::{RegistryError, SessionRegistry};
pub use secret_value::SecretValue;
pub use session::{SecretSpec, Session, SessionSpec};
