//! Worker heartbeats and placement. Workers announce themselves (name, gRPC address, capacity,
//! usage, isolation) on `osb.worker.<id>.heartbeat`; the control plane keeps a view of live
//! workers, picks one with room for each new sandbox, and declares a worker lost when its
//! heartbeats stop, so its sandboxes can be reported. The decision core is pure (time is an
//! argument); the bus loops around it are thin.
//!
//! It must never carry a secret value, and it never decides anything from a worker's claim
//! alone beyond placement: a worker's identity is proven on the gRPC link (mutual TLS).

#![forbid(unsafe_code)]

mod core;
mod heartbeat;
mod service;

pub use crate::core::{PlacementCore, PlacementError, PlacementRequest, WorkerStatus, WorkerView};
pub use heartbeat::{Capacity, Usage, WorkerHeartbeat, HEARTBEAT_KIND};
pub use service::{publish_heartbeats, PlacementService, WorkerChange};
