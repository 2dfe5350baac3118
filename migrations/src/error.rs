//! Store errors. A unique-constraint violation becomes `Conflict`, a missing row `NotFound`;
//! everything else is a database failure whose message comes from the driver. Messages never
//! contain column values, so a ciphertext or key fingerprint cannot end up in an API error.

use sea_orm::{DbErr, SqlErr};

/// What went wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique key exists (duplicate name, concurrent writer).
    #[error("{0} already exists")]
    Conflict(String),
    /// The row does not exist (or belongs to another org).
    #[error("{0} not found")]
    NotFound(String),
    /// A conditional update found the row changed under it; retry with fresh data.
    #[error("{0} was changed concurrently; retry")]
    Stale(String),
    /// A stored value could not be interpreted (corrupt row or wrong schema).
    #[error("stored {what} is invalid: {reason}")]
    Corrupt { what: String, reason: String },
    /// An org quota would be exceeded (the sentence names it and what to do).
    #[error("{0}")]
    QuotaExceeded(String),
    /// The database refused or failed the operation.
    #[error("database error: {0}")]
    Database(#[source] DbErr),
}

impl StoreError {
    /// Maps a driver error, turning unique violations into `Conflict(what)`.
    pub(crate) fn from_db(error: DbErr, what: &str) -> Self {
        match error.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Conflict(what.to_owned()),
            _ => StoreError::Database(error),
        }
    }

    pub(crate) fn corrupt(what: &str, reason: impl ToString) -> Self {
        StoreError::Corrupt {
            what: what.to_owned(),
            reason: reason.to_string(),
        }
    }
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        StoreError::Database(error)
    }
}
