//! Integration tests of the worker service over its actors (as root: real network-namespace
//! sandboxes and a real sealing proxy, no gRPC transport): every command for a sandbox goes
//! through its `VmActor`, and the actors' faults leave nothing behind.

mod vm_actors;
