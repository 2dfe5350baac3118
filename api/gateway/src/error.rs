//! `ApiError`: every refusal the gateway gives, as a stable code, an HTTP status from
//! `ErrorCode`, and a sentence that says what was wrong and what to do. Internal failures are
//! logged with their cause and answered with a generic sentence, so driver messages (which
//! could quote values) never reach a client.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use osb_proto::ErrorCode;
use osb_store::StoreError;
use osb_vault::VaultError;
use serde::Serialize;

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds to send as `Retry-After` (rate limits).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: &'a str,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429 `rate_limited` with `Retry-After: seconds`.
    pub fn rate_limited(message: impl Into<String>, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds.max(1)),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(context, error = %cause, "request failed inside the platform");
        Self::new(
            ErrorCode::Internal,
            format!("{context} failed inside the platform; retry, and report it if it persists"),
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.json(ErrorBody {
            error: &self.message,
            code: self.code.as_str(),
        })
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(what) => ApiError::new(
                ErrorCode::Conflict,
                format!("{what} already exists; choose another name or update the existing one"),
            ),
            StoreError::Stale(what) => ApiError::new(
                ErrorCode::Conflict,
                format!("{what} changed while this request ran; retry it"),
            ),
            StoreError::QuotaExceeded(message) => ApiError::new(ErrorCode::Conflict, message),
            StoreError::Database(cause) => ApiError::new(ErrorCode::Unavailable, {
                tracing::error!(error = %cause, "database error");
                "the database is unavailable; retry shortly".to_owned()
            }),
            other => ApiError::internal("the store", &other),
        }
    }
}

impl From<VaultError> for ApiError {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::EmptyValue => ApiError::invalid("value must not be empty"),
            VaultError::ValueTooLarge { len, max } => ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("value is {len} bytes; the limit is {max} bytes"),
            ),
            VaultError::ContendedWrite { name } => ApiError::new(
                ErrorCode::Conflict,
                format!("secret {name} kept changing while it was written; retry"),
            ),
            VaultError::Store(store) => store.into(),
            // The reason names versions and environment variables only, never a key.
            locked @ VaultError::Locked { .. } => {
                ApiError::new(ErrorCode::Unavailable, locked.to_string())
            }
            other => ApiError::internal("the secret vault", &other),
        }
    }
}

/// Fallback for paths that match no route.
pub async fn unknown_route(request: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "route {} {}",
        request.method(),
        request.path()
    )))
}
