//! The sealing MITM proxy of a worker: sandboxes send HTTPS (and allowlisted plain HTTP) through
//! it, and it swaps each sandbox's sealed tokens (`osb_sealed_…`) for the real secret values — only
//! toward hosts the secret allows — and scrubs the values back out of responses. The data plane is
//! plain tokio + hyper + rustls; [`actor::ProxyActor`] is a thin actix control shell over it.
//!
//! This crate must never let a secret value reach a log, an event, an error, a `Debug` string, a
//! response the sandbox receives, or a host the secret does not allow; and it never forwards a
//! foreign or unknown token.

#![forbid(unsafe_code)]

pub mod actor;
pub mod admission;
pub mod body;
pub mod ca;
pub mod cert_cache;
pub mod config;
pub mod control;
pub mod encoding;
pub mod events;
pub mod express;
pub mod forward;
pub mod fuzzing;
pub mod handler;
mod hyper_front;
mod lanes;
pub mod limits;
pub mod linger;
mod listener;
pub mod metrics;
pub mod original_dst;
pub mod policy;
pub mod pool;
pub mod proxy;
mod proxy_keys;
pub mod refusal;
pub mod registry;
pub mod replacer;
pub mod rewrite;
pub mod scrubber;
pub mod secret_value;
pub mod session;
pub mod shared;
mod tls_buffers;
pub mod transform;
pub mod upstream;
pub mod versions;
pub mod websocket;
pub mod wiped;

pub use actor::{ProxyActor, ProxyActorError};
pub use ca::{CA_CERT_FILE, CA_KEY_FILE};
pub use config::{parse_resolve_override, Limits, OversizedBody, ProxyConfig};
pub use events::{ChannelSink, EventSink, NullSink, ProxyEvent};
pub use metrics::ProxyMetrics;
pub use original_dst::{FixedOriginalDestination, KernelOriginalDestination, OriginalDestination};
pub use policy::{AddressPolicy, Scheme, SealingPolicy, Target};
pub use proxy::{ProxyError, SealingProxy};
pub use refusal::Refusal;
pub use registry::{RegistryError, SecretUpdate, SessionRegistry};
pub use secret_value::SecretValue;
pub use session::{SecretSpec, Session, SessionSpec};
