//! JSON and path extraction settings: bodies are bounded (1 MiB: the largest legal request is
//! a 64 KiB secret), and malformed JSON, wrong types, unknown fields and oversized bodies are
//! answered in the standard error shape naming what was wrong.

use actix_web::error::{JsonPayloadError, PathError};
use actix_web::web;
use osb_proto::ErrorCode;

use super::error::ApiError;

/// Largest accepted JSON body.
pub const MAX_JSON_BODY: usize = 1024 * 1024;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_JSON_BODY)
        .error_handler(|error, _request| {
            let api_error = match &error {
                JsonPayloadError::Overflow { limit }
                | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body is larger than {limit} bytes"),
                ),
                JsonPayloadError::ContentType => ApiError::invalid(
                    "request body must be JSON: send Content-Type: application/json",
                ),
                JsonPayloadError::Deserialize(cause) => {
                    ApiError::invalid(format!("request body is not valid: {cause}"))
                }
                other => ApiError::invalid(format!("request body could not be read: {other}")),
            };
            api_error.into()
        })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error: PathError, _request| {
        ApiError::invalid(format!("path is not valid: {error}")).into()
    })
}
