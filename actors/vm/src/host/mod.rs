//! What every isolating runtime builds on the host, shared by the netns and microVM runtimes:
//! the worker's context (prefix naming, address pool, resolver, checkpoint store, cgroup
//! layout), each sandbox's link (network namespace + veth + per-sandbox nftables + resolver
//! policy), cgroups, mounts and loop devices under sandbox directories, and the orphan reaper.
//! The runtimes differ only in what runs behind the link (a namespaced pid 1, or a QEMU VM on a
//! tap). This module must never start a sandbox process; it only prepares and removes host
//! objects.

pub mod cgroup;
pub mod firewall;
pub(crate) mod lifecycle;
pub mod link;
pub mod mounts;
pub mod network;
pub mod reaper;

mod context;
pub(crate) mod table;

pub(crate) use context::HostContext;
