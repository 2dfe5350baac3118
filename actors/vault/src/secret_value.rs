//! The vault's bound on a secret value. The value type itself is `osb_proto::SecretValue`
//! (re-exported here): one zeroising, redacting type from the gateway to the proxy.

pub use osb_proto::SecretValue;

/// Upper bound for a secret value (64 KiB): large enough for a PEM bundle or a service-account
/// JSON, small enough that a mistaken upload of a file is refused.
pub const MAX_SECRET_VALUE_BYTES: usize = 64 * 1024;
