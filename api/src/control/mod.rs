//! Control-plane pieces that talk to workers: today the gRPC `SecretPusher` that carries a
//! secret update to the worker hosting a sandbox. (Sagas and placement wiring join it here.)
//! Nothing here logs a value; values exist only inside the request being sent.

mod secret_push;

pub use secret_push::GrpcSecretPusher;
