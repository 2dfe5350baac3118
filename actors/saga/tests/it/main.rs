//! Saga engine tests against real databases, with a toy saga over an in-memory "world" whose
//! resources make leaks visible.

#![allow(clippy::unwrap_used)]

mod engine;
mod fencing;
mod progress;
mod toy;
