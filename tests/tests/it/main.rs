//! Workspace-wide tests: checks about the code base itself, and end-to-end tests that join
//! several crates (the data plane: runtime + proxy + a local origin).

#![allow(clippy::unwrap_used)]

mod crate_boundaries;
mod data_plane;
mod module_docs;
