//! The `Caller` extractor: authenticates `X-API-Key: <key>` or `Authorization: Bearer <key>`
//! against the stored hashes. No key → 401 `missing_api_key`; an unknown key → 403
//! `invalid_api_key`; a revoked or expired one → 401 `revoked_api_key` / `expired_api_key`; a
//! key whose scope does not cover the route → 403 `insufficient_scope` (ADR 0026). Each use is
//! noted for `last_used_at`, written in batches. Handlers that take a `Caller` only ever see
//! their own org's objects. A presented key is hashed and dropped: it is never logged. Lookups
//! go through a short-lived cache of the key's hash (`key_cache`, ADR 0033).
//!
//! `authenticate_first` (middleware on `/api`) settles the key before any extractor runs, so a
//! request with a wrong key is 403 even when its body is also malformed: a caller without a
//! valid key learns nothing of the validation rules.

use std::future::Future;
use std::pin::Pin;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use osb_proto::{ErrorCode, OrgId};

use super::api_keys::hash_api_key;
use super::error::ApiError;
use super::scopes::KeyScope;
use super::state::AppState;

/// The authenticated org of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub org_id: OrgId,
    /// The key the request came with, and what it may do.
    pub key_id: uuid::Uuid,
    pub scope: KeyScope,
}

/// The key a request presents (`X-API-Key` or `Authorization: Bearer`), if any.
pub(crate) fn presented_key(request: &HttpRequest) -> Option<String> {
    let headers = request.headers();
    if let Some(value) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(value.trim().to_owned());
    }
    let authorization = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The outcome of authenticating a request, stored by `authenticate_first`.
#[derive(Debug, Clone)]
struct Authenticated(Result<Caller, ApiError>);

/// Middleware: authenticates the request (when it presents a key) before the handler's
/// extractors run, and leaves the outcome for the `Caller` extractor.
pub async fn authenticate_first(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let outcome = authenticate(request.request()).await;
    request.extensions_mut().insert(Authenticated(outcome));
    next.call(request).await
}

fn authenticate(request: &HttpRequest) -> impl Future<Output = Result<Caller, ApiError>> {
    let key = presented_key(request);
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let method = request.method().clone();
    let path = request.path().to_owned();
    async move {
        let key = key.filter(|key| !key.is_empty()).ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingApiKey,
                "no API key: send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`",
            )
        })?;
        let state =
            state.ok_or_else(|| ApiError::internal("authentication", &"gateway state missing"))?;
        let hash = hash_api_key(&key);
        drop(key);
        let record = match state.key_cache.get(&hash, std::time::Instant::now()) {
            Some(record) => Some(record),
            None => {
                let read_at = std::time::Instant::now();
                let record = state.store.find_api_key_by_hash(&hash).await?;
                if let Some(record) = &record {
                    state.key_cache.put(hash, record.clone(), read_at);
                }
                record
            }
        };
        let Some(record) = record else {
            return Err(ApiError::new(
                ErrorCode::InvalidApiKey,
                "the API key is not valid; ask an org admin for one (`POST /api/keys` or `osbd admin keys create ORG`)",
            ));
        };
        let now = chrono::Utc::now();
        if let Some(revoked_at) = record.revoked_at {
            tracing::info!(key_id = %record.id, "a revoked api key was refused");
            return Err(ApiError::new(
                ErrorCode::RevokedApiKey,
                format!("the API key {} was revoked at {revoked_at}; use its replacement or ask an org admin for a new one", record.key_prefix),
            ));
        }
        if let Some(expires_at) = record.expires_at.filter(|at| *at <= now) {
            return Err(ApiError::new(
                ErrorCode::ExpiredApiKey,
                format!("the API key {} expired at {expires_at}; rotate it (`POST /api/keys/{{id}}/rotate` with an admin key) or ask an org admin for a new one", record.key_prefix),
            ));
        }
        // A scope this gateway does not know grants nothing.
        let scope: KeyScope = record.scope.parse().map_err(|_| {
            ApiError::new(
                ErrorCode::InsufficientScope,
                format!(
                    "the API key has scope {:?}, which this gateway does not know",
                    record.scope
                ),
            )
        })?;
        if !scope.allows(&method, &path) {
            return Err(ApiError::new(
                ErrorCode::InsufficientScope,
                format!("a key with scope {scope} may not call {method} {path}; use a key with a wider scope (admin may do everything)"),
            ));
        }
        if let Err(wait) = state
            .rate_limiter
            .admit(record.id, std::time::Instant::now())
        {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(ApiError::rate_limited(
                format!("too many requests with this API key; retry after {seconds} s"),
                seconds,
            ));
        }
        state.key_usage.touch(&state.store, record.id, now);
        Ok(Caller {
            org_id: record.org_id,
            key_id: record.id,
            scope,
        })
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        if let Some(Authenticated(outcome)) = request.extensions().get::<Authenticated>() {
            let outcome = outcome.clone();
            return Box::pin(async move { outcome });
        }
        Box::pin(authenticate(request))
    }
}
