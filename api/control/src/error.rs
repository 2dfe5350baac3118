//! Why a control-plane operation was refused or failed, in terms the REST gateway maps to a
//! status: not found, conflict, invalid, unavailable (a worker or the bus is down), or failed
//! (the saga unwound; its message says why). Messages are sentences without secret values.

use osb_store::StoreError;

/// A control-plane failure.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<osb_saga::SagaError> for ControlError {
    fn from(error: osb_saga::SagaError) -> Self {
        match error {
            osb_saga::SagaError::Store(store) => ControlError::Store(store),
            other => ControlError::Failed(other.to_string()),
        }
    }
}
