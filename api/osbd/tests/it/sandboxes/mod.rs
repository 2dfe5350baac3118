//! Sandboxes end to end through the REST gateway and the control plane's sagas, on real
//! workers (netns runtime + sealing proxy over mutual TLS) and a real database.

mod bus_faults;
mod checkpoint_quota;
mod lifecycle;
mod listing;
mod microvm;
mod nats_restart;
mod sagas;
