//! The real value of a secret while it lives in the proxy: `osb_proto::SecretValue`, the one
//! zeroising type with a redacting `Debug` that every crate uses. It must never be printed,
//! logged, serialised or put in an error.

pub use osb_proto::SecretValue;
