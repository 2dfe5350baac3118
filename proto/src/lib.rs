//! Shared vocabulary of OpenSandbox: typed ids (`SandboxId`, `WorkerId`, …) and worker names,
//! stable error codes, sealed tokens, host patterns, the one `SecretValue` type every crate
//! holds plaintext values in, and (behind the `grpc` feature) the worker gRPC contract
//! generated from `worker.proto`.
//! Every other crate depends on this one, so it stays small and dependency-light. It must never
//! hold a secret value itself, talk to the network or know about storage.

#![forbid(unsafe_code)]

pub mod display_safe;
pub mod error_code;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod host_pattern;
pub mod ids;
pub mod runtime_name;
pub mod sealed_token;
pub mod secret_value;
pub mod worker_name;

pub use display_safe::{display_safe, display_safe_with, SEALED_PLACEHOLDER};
pub use error_code::ErrorCode;
pub use host_pattern::{HostMatcher, HostPattern, HostPatternError};
pub use ids::{
    CheckpointId, IdParseError, OrgId, ProjectId, SagaId, SandboxId, SecretId, SnapshotId, WorkerId,
};
pub use runtime_name::{RuntimeName, UnknownRuntime, DEV_RUNTIME_ADVERTISED, RUNTIME_NAMES};
pub use sealed_token::{
    SealedToken, SealedTokenParseError, SEALED_TOKEN_HEX_LEN, SEALED_TOKEN_LEN, SEALED_TOKEN_PREFIX,
};
pub use secret_value::SecretValue;
pub use worker_name::{is_valid_identity_name, WorkerName, WorkerNameError, MAX_IDENTITY_NAME_LEN};
