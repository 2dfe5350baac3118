//! Test harness shared by every crate's integration tests: a fresh database per test (a
//! randomly named PostgreSQL database, dropped afterwards, or a SQLite file in a temporary
//! directory), canary secrets with a helper that searches text for every encoding of them, and a
//! local TLS origin that plays an LLM API.
//! It must never be a dependency of production code, and never points at a database it did not
//! create.

#![forbid(unsafe_code)]

mod canary;
mod database;
mod llm_origin;

pub use canary::Canary;
pub use database::{postgres_admin_url, TestDatabase, TestDatabaseError};
pub use llm_origin::LlmOrigin;
