//! The `Caller` extractor: authenticates `X-API-Key: <key>` or `Authorization: Bearer <key>`
//! against the stored hashes. No key → 401 `missing_api_key`; an unknown or revoked key → 403
//! `invalid_api_key`. Handlers that take a `Caller` only ever see their own org's objects.
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
use super::state::AppState;

/// The authenticated org of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub org_id: OrgId,
}

fn presented_key(request: &HttpRequest) -> Option<String> {
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
    async move {
        let key = key.filter(|key| !key.is_empty()).ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingApiKey,
                "no API key: send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`",
            )
        })?;
        let state =
            state.ok_or_else(|| ApiError::internal("authentication", &"gateway state missing"))?;
        let record = state.store.find_active_api_key(&hash_api_key(&key)).await?;
        match record {
            Some(record) => Ok(Caller {
                org_id: record.org_id,
            }),
            None => Err(ApiError::new(
                ErrorCode::InvalidApiKey,
                "the API key is not valid (unknown or revoked); create a new one with `osbd admin create-org` or ask your admin",
            )),
        }
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
