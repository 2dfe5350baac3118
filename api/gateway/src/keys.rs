//! `/api/keys` (admin scope only, ADR 0026): list the org's keys, create one with a name, a
//! scope and an optional expiry, revoke one, rotate one (a new key with the same name, scope
//! and expiry; the old one revoked in the same transaction). A key is shown once, in the answer
//! that creates it; listings show its display prefix only.
//!
//! It must never return, log or store a key: only its SHA-256 reaches the store.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, SubsecRound, Utc};
use osb_store::{ApiKeyRecord, NewApiKey};
use serde::{Deserialize, Serialize};

use super::api_keys::ApiKey;
use super::auth::Caller;
use super::error::ApiError;
use super::scopes::KeyScope;
use super::state::AppState;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/keys", web::get().to(list))
        .route("/keys", web::post().to(create))
        .route("/keys/{key}", web::delete().to(revoke))
        .route("/keys/{key}/rotate", web::post().to(rotate));
}

/// Longest key name.
pub const MAX_KEY_NAME: usize = 64;
/// Furthest expiry a key may be given (about ten years).
const MAX_EXPIRY_DAYS: i64 = 3653;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateKey {
    name: String,
    scope: String,
    expires_at: Option<DateTime<Utc>>,
}

/// A key as listings show it (never the key).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    #[serde(rename = "keyID")]
    pub id: uuid::Uuid,
    pub name: String,
    /// `osk_` and the first hex characters: enough to recognise a key, not to use it.
    pub prefix: String,
    pub scope: String,
    /// `active`, `revoked` or `expired`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Updated in batches: it may lag by up to the flush interval.
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl KeyView {
    /// The view of a stored key at `now`.
    pub fn at(record: ApiKeyRecord, now: DateTime<Utc>) -> Self {
        let status = if record.revoked_at.is_some() {
            "revoked"
        } else if record.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        };
        Self {
            id: record.id,
            name: record.name,
            prefix: record.key_prefix,
            scope: record.scope,
            status: status.to_owned(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
        }
    }
}

/// The answer that shows a new key, once.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedKey<'a> {
    #[serde(flatten)]
    view: KeyView,
    api_key: &'a str,
}

/// A key name: 1-64 characters, no control characters.
pub fn validate_key_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_KEY_NAME || name.chars().any(char::is_control)
    {
        return Err(format!(
            "name must be 1-{MAX_KEY_NAME} characters without control characters"
        ));
    }
    Ok(name.to_owned())
}

fn key_id(text: &str) -> Result<uuid::Uuid, ApiError> {
    text.parse().map_err(|_| {
        ApiError::invalid(format!(
            "key id {:?} is not a key id (the keyID of GET /api/keys)",
            text.chars().take(64).collect::<String>()
        ))
    })
}

fn created(record: ApiKeyRecord, key: &ApiKey) -> HttpResponse {
    HttpResponse::Created().json(CreatedKey {
        view: KeyView::at(record, Utc::now()),
        api_key: key.expose(),
    })
}

async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let keys: Vec<KeyView> = state
        .store
        .list_api_keys(caller.org_id)
        .await?
        .into_iter()
        .map(|record| KeyView::at(record, now))
        .collect();
    Ok(HttpResponse::Ok().json(keys))
}

async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = validate_key_name(&body.name).map_err(ApiError::invalid)?;
    let scope: KeyScope = body
        .scope
        .parse()
        .map_err(|error: super::scopes::UnknownScope| ApiError::invalid(error.to_string()))?;
    let now = Utc::now();
    // The store keeps microseconds: answer with what it keeps.
    let expires_at = body.expires_at.map(|at| at.trunc_subsecs(6));
    if let Some(expires_at) = expires_at {
        if expires_at <= now || expires_at > now + chrono::Duration::days(MAX_EXPIRY_DAYS) {
            return Err(ApiError::invalid(
                "expiresAt must be in the future and at most ten years away",
            ));
        }
    }
    let key = ApiKey::generate();
    let record = state
        .store
        .create_api_key(NewApiKey {
            org_id: caller.org_id,
            name,
            key_hash: key.hash(),
            key_prefix: key.display_prefix(),
            scope: scope.as_str().to_owned(),
            expires_at,
        })
        .await?;
    tracing::info!(org = %caller.org_id, key_id = %record.id, scope = %scope, "api key created");
    Ok(created(record, &key))
}

async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = key_id(&path)?;
    let record = state.store.revoke_api_key(caller.org_id, id).await?;
    state.key_cache.forget(id);
    tracing::info!(org = %caller.org_id, key_id = %id, "api key revoked");
    Ok(HttpResponse::Ok().json(KeyView::at(record, Utc::now())))
}

async fn rotate(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = key_id(&path)?;
    let key = ApiKey::generate();
    let record = state
        .store
        .rotate_api_key(caller.org_id, id, &key.hash(), &key.display_prefix())
        .await
        .map_err(|error| match error {
            osb_store::StoreError::Conflict(message) => {
                ApiError::new(osb_proto::ErrorCode::Conflict, message)
            }
            other => other.into(),
        })?;
    state.key_cache.forget(id);
    tracing::info!(org = %caller.org_id, old_key_id = %id, key_id = %record.id, "api key rotated");
    Ok(created(record, &key))
}
