//! The store: sea-orm migrations, entities and queries for PostgreSQL (the cluster database) and
//! SQLite (the embedded default). It is the only crate that speaks SQL. Entities never leave it:
//! callers get plain records (`ProjectRecord`, `SecretRecord`, …) keyed by typed ids. It stores
//! secret *ciphertext* only; it must never see, log or return a plaintext secret value, and it
//! knows nothing about encryption keys beyond their public fingerprints and version numbers.

#![forbid(unsafe_code)]

mod entities;
mod error;
mod listing_epochs;
pub mod migrator;
mod queries;
mod records;
mod store;

pub use error::StoreError;
pub use listing_epochs::{
    listing_epoch, note_listing_change, note_listing_change_everywhere, ListingEpoch,
};
pub use records::*;
pub use store::{DatabaseKind, Store};
