//! `/api/projects/{project}/secrets`: set (create or replace; the value is write-only), list
//! (names, hosts, versions — never values) and delete. A value never appears in a response,
//! an error or a log line.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use osb_proto::{ErrorCode, ProjectId};
use osb_store::SecretRecord;
use osb_vault::{SecretValue, MAX_SECRET_VALUE_BYTES};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use super::events::{publish_secret_change, SecretChanged};
use super::pagination::{Listing, PageQuery};
use super::projects::resolve;
use super::state::AppState;
use super::validate;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/projects/{project}/secrets", web::get().to(list))
        .route("/projects/{project}/secrets/{name}", web::put().to(put))
        .route(
            "/projects/{project}/secrets/{name}",
            web::delete().to(delete),
        );
}

/// PUT body. `Debug` is hand-written so the value cannot be logged by accident.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PutSecret {
    value: String,
    allowed_hosts: Option<Vec<String>>,
}

impl std::fmt::Debug for PutSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutSecret")
            .field("value", &"[redacted]")
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretSetView {
    pub name: String,
    pub status: String,
    pub version: u64,
    /// Running sandboxes of the project whose proxy session now uses the new value.
    pub refreshed: u64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretView {
    pub name: String,
    /// The secret's own host patterns; `[]` when it inherits the project's allowlist.
    pub allowed_hosts: Vec<String>,
    pub inherits_project_allowlist: bool,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<SecretRecord> for SecretView {
    fn from(record: SecretRecord) -> Self {
        Self {
            name: record.name,
            inherits_project_allowlist: record.allowed_hosts.is_none(),
            allowed_hosts: record.allowed_hosts.unwrap_or_default(),
            version: record.secret_version,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

async fn put(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<PutSecret>,
) -> Result<HttpResponse, ApiError> {
    let (project_ref, name) = path.into_inner();
    let name = validate::secret_name(&name)?;
    let body = body.into_inner();
    let value = SecretValue::from_string(body.value);
    if value.is_empty() {
        return Err(ApiError::invalid("value must not be empty"));
    }
    if value.len() > MAX_SECRET_VALUE_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "value is {} bytes; the limit is {MAX_SECRET_VALUE_BYTES} bytes",
                value.len()
            ),
        ));
    }
    let allowed_hosts = match body.allowed_hosts {
        None => None,
        Some(entries) if entries.is_empty() => {
            return Err(ApiError::new(
                ErrorCode::Unprocessable,
                "allowedHosts is empty, which would make the secret unusable; omit the field to use the project's allowlist",
            ))
        }
        Some(entries) => Some(validate::host_patterns("allowedHosts", &entries)?),
    };
    let project = resolve(&state, caller, &project_ref).await?;
    let stored = state
        .vault
        .put_secret(caller.org_id, project.id, &name, &value, allowed_hosts)
        .await?;
    publish_secret_change(
        &state,
        project.id,
        "secret_updated",
        SecretChanged {
            org_id: caller.org_id,
            name: stored.record.name.clone(),
            version: stored.record.secret_version,
            allowed_hosts: stored.record.allowed_hosts.clone(),
        },
    )
    .await;
    let refreshed = fan_out(&state, project.id, &stored.record.name, false).await;
    let view = SecretSetView {
        name: stored.record.name,
        status: "set".to_owned(),
        version: stored.record.secret_version,
        refreshed,
    };
    Ok(if stored.replaced {
        HttpResponse::Ok().json(view)
    } else {
        HttpResponse::Created().json(view)
    })
}

async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let project = resolve(&state, caller, &path).await?;
    let query = PageQuery::parse(&request, Listing::Secrets(project.id))?;
    let page = state
        .store
        .page_secrets(project.id, query.after_name(), query.limit)
        .await?;
    Ok(
        query.respond(&request, page, SecretView::from, |query, last| {
            query.name_cursor(&last.name)
        }),
    )
}

async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (project_ref, name) = path.into_inner();
    let name = validate::secret_name(&name)?;
    let project = resolve(&state, caller, &project_ref).await?;
    let version = state
        .store
        .get_sealed_secret(project.id, &name)
        .await?
        .map_or(0, |row| row.record.secret_version);
    state.vault.delete_secret(project.id, &name).await?;
    publish_secret_change(
        &state,
        project.id,
        "secret_deleted",
        SecretChanged {
            org_id: caller.org_id,
            name: name.clone(),
            version,
            allowed_hosts: None,
        },
    )
    .await;
    fan_out(&state, project.id, &name, true).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Pushes a changed (or removes a deleted) secret to every live sandbox of the project, through
/// the control plane (its supervised secret vault actor and worker links). Returns how many
/// sandboxes now hold the change; failures are the control plane's to log (the write is
/// committed either way).
async fn fan_out(state: &AppState, project: ProjectId, name: &str, removed: bool) -> u64 {
    let Some(control) = state.control.as_ref() else {
        return 0;
    };
    control.fan_out_secret(project, name, removed).await
}
