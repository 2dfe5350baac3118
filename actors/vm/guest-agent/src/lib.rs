//! The guest agent of the microVM runtime and the wire protocol it speaks with the worker.
//!
//! The agent runs inside the VM (started by the guest init after the root is mounted), listens
//! on the virtio-serial port `osb.agent` and runs commands for the worker: buffered or
//! streaming, with env, cwd, uid, timeout, exit code. The worker sends every command its full
//! environment (sealed tokens only, composed by `osb-vm`), so the agent holds no state between
//! commands and never receives a secret value. The library part is the protocol alone, so the
//! host links no agent code; the agent must never trust a frame without its length bound.

#![forbid(unsafe_code)]

pub mod protocol;
