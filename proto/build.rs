//! Compiles `worker.proto` into tonic/prost code when the `grpc` feature is on. The compiler is
//! protox (pure Rust), so building needs no system `protoc`. Messages that hold a secret value or
//! a sealed token get no derived `Debug`: `src/grpc/redact.rs` writes one that prints
//! `[redacted]` instead. Without the feature this script does nothing.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=worker.proto");
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "grpc")]
    compile_worker_proto()?;
    Ok(())
}

/// Messages whose `Debug` is hand-written because they carry a value or a token. Keep in sync
/// with `src/grpc/redact.rs` (a missing impl there is a compile error, so drift cannot go silent).
#[cfg(feature = "grpc")]
const REDACTED_MESSAGES: &[&str] = &[
    ".opensandbox.worker.v1.SealedEnv",
    ".opensandbox.worker.v1.SecretMaterial",
    ".opensandbox.worker.v1.UpdateSecretValueRequest",
    ".opensandbox.worker.v1.StageValuesRequest",
];

#[cfg(feature = "grpc")]
fn compile_worker_proto() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile(["worker.proto"], ["."])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .skip_debug(REDACTED_MESSAGES.iter().copied())
        .compile_fds(descriptors)?;
    Ok(())
}
