//! Stable, machine-readable error codes. Every refusal the platform gives (REST body, proxy
//! refusal, CLI error) carries one of these in `code`, next to a human sentence in `error`.
//! Codes are part of the public contract: add new ones, never rename.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stable error code with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A field of the request is missing or malformed.
    InvalidInput,
    /// No API key was given.
    MissingApiKey,
    /// The API key is wrong or revoked.
    InvalidApiKey,
    /// The object does not exist (or belongs to another org).
    NotFound,
    /// A name is taken or the object is busy.
    Conflict,
    /// The body or a value exceeds its bound.
    PayloadTooLarge,
    /// Well-formed but not acceptable (for example a bare `*` host pattern).
    Unprocessable,
    /// A dependency (database, bus, worker) is down.
    Unavailable,
    /// Something inside the platform failed; the message says what.
    Internal,
    /// The egress target is not on the allowlist.
    HostNotAllowed,
    /// A sealed token may not be sent to this host.
    SecretNotAllowedForHost,
    /// A sealed token does not belong to this sandbox (or no longer exists).
    UnknownToken,
    /// Host header / `:authority` does not match the TLS SNI or CONNECT target.
    MisdirectedRequest,
    /// The upstream address is private, loopback, link-local or a metadata service.
    ForbiddenUpstreamAddress,
    /// Plain HTTP would carry a secret.
    PlaintextSecret,
    /// Traffic from an address that belongs to no sandbox.
    UnknownSource,
    /// The upstream could not be reached or failed.
    UpstreamFailure,
    /// The upstream answered in a form the proxy cannot scrub (an unknown content coding).
    UnscrubbableResponse,
    /// A per-sandbox bound of the proxy was reached (connections, buffered bytes, mint rate).
    RateLimited,
    /// A per-worker bound of the proxy was reached.
    ProxyOverloaded,
    /// The client took too long to send a request.
    RequestTimeout,
    /// The API key was revoked (ADR 0026).
    RevokedApiKey,
    /// The API key is past its expiry (ADR 0026).
    ExpiredApiKey,
    /// The API key's scope does not cover this route (ADR 0026).
    InsufficientScope,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidInput => 400,
            ErrorCode::MissingApiKey => 401,
            ErrorCode::InvalidApiKey => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Unprocessable => 422,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
            ErrorCode::HostNotAllowed
            | ErrorCode::SecretNotAllowedForHost
            | ErrorCode::UnknownToken
            | ErrorCode::ForbiddenUpstreamAddress
            | ErrorCode::PlaintextSecret => 403,
            ErrorCode::MisdirectedRequest => 421,
            ErrorCode::UnknownSource => 407,
            ErrorCode::UpstreamFailure | ErrorCode::UnscrubbableResponse => 502,
            ErrorCode::RateLimited => 429,
            ErrorCode::ProxyOverloaded => 503,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::RevokedApiKey | ErrorCode::ExpiredApiKey => 401,
            ErrorCode::InsufficientScope => 403,
        }
    }

    /// The snake_case wire form.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::MissingApiKey => "missing_api_key",
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Unprocessable => "unprocessable",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::HostNotAllowed => "host_not_allowed",
            ErrorCode::SecretNotAllowedForHost => "secret_not_allowed_for_host",
            ErrorCode::UnknownToken => "unknown_token",
            ErrorCode::MisdirectedRequest => "misdirected_request",
            ErrorCode::ForbiddenUpstreamAddress => "forbidden_upstream_address",
            ErrorCode::PlaintextSecret => "plaintext_secret",
            ErrorCode::UnknownSource => "unknown_source",
            ErrorCode::UpstreamFailure => "upstream_failure",
            ErrorCode::UnscrubbableResponse => "unscrubbable_response",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ProxyOverloaded => "proxy_overloaded",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::RevokedApiKey => "revoked_api_key",
            ErrorCode::ExpiredApiKey => "expired_api_key",
            ErrorCode::InsufficientScope => "insufficient_scope",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_matches_serde() {
        for code in [
            ErrorCode::InvalidInput,
            ErrorCode::SecretNotAllowedForHost,
            ErrorCode::ForbiddenUpstreamAddress,
            ErrorCode::UnknownSource,
            ErrorCode::UnscrubbableResponse,
            ErrorCode::RateLimited,
            ErrorCode::ProxyOverloaded,
            ErrorCode::RequestTimeout,
            ErrorCode::RevokedApiKey,
            ErrorCode::ExpiredApiKey,
            ErrorCode::InsufficientScope,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(ErrorCode::MissingApiKey.http_status(), 401);
        assert_eq!(ErrorCode::NotFound.http_status(), 404);
        assert_eq!(ErrorCode::MisdirectedRequest.http_status(), 421);
        assert_eq!(ErrorCode::UpstreamFailure.http_status(), 502);
        assert_eq!(ErrorCode::RateLimited.http_status(), 429);
        assert_eq!(ErrorCode::ProxyOverloaded.http_status(), 503);
    }
}
