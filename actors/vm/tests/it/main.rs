//! Integration tests of the sandbox runtime. They need root, iproute2, nftables, util-linux,
//! e2fsprogs, loop devices, openssl and busybox-static (see scripts/debian-packages.txt). Every
//! test owns a distinct name prefix and /24 address pool, so tests run in parallel processes; a
//! guard reaps the test's host objects even when it panics. Network traffic stays on addresses
//! of namespaces and veths the tests create.

mod actor;
mod actor_faults;
mod checkpoints;
mod disk;
mod egress;
mod exec;
mod isolation;
mod lifecycle;
mod microvm;
mod secrets;
mod support;
mod templates;
mod warm_pool;
