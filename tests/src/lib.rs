//! Test harness shared by every crate's integration tests: a fresh database per test (a
//! randomly named PostgreSQL database, dropped afterwards, or a SQLite file in a temporary
//! directory) and canary secrets with a helper that searches text for every encoding of them.
//! It must never be a dependency of production code, and never points at a database it did not
//! create.

#![forbid(unsafe_code)]

mod canary;
mod database;

pub use canary::Canary;
pub use database::{postgres_admin_url, TestDatabase, TestDatabaseError};
