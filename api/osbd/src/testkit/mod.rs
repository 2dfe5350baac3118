//! The in-process test platform (cargo feature `testkit`): a fresh PostgreSQL database, a bus,
//! one control-plane node with the gateway on a free loopback port, workers with netns
//! sandboxes and the sealing proxy over mutual TLS, an org with an API key and a local TLS
//! origin playing an LLM API. The integration tests of `osbd` and its control-plane bench both
//! start it from here, so there is one copy.
//!
//! It is for tests and benches only: it must never be enabled in a build that is shipped (the
//! feature is off by default; `osbd`'s own dev-dependency turns it on).

mod platform;
mod reap;

pub use platform::{reqwest_lite, start_platform, Platform, PlatformOptions, LLM_HOST};
pub use reap::Reap;
