//! Integration tests of `oc` without a server: the real binary against a recording stub of the
//! REST API (configuration sources, what goes on the wire, exit codes, streams). The tests
//! that run `oc` against a real gateway or platform live with `osbd`, which can start them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod oc_config;
mod oc_support;
mod oc_wire;
