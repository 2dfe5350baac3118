//! `/api/projects`: create, list (sorted by name), get, partial update, delete. A project is
//! addressed by id (`prj_…`) or name. Objects of another org are "not found", never "forbidden".

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use osb_proto::{OrgId, ProjectId};
use osb_store::{NewProject, ProjectPatch, ProjectRecord};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use super::listing_cache;
use super::pagination::{Listing, PageQuery};
use super::state::AppState;
use super::validate;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/projects", web::post().to(create))
        .route("/projects", web::get().to(list))
        .route("/projects/{project}", web::get().to(get))
        .route("/projects/{project}", web::patch().to(update))
        .route("/projects/{project}", web::delete().to(delete));
}

/// Defaults for fields a create request leaves out.
pub const DEFAULT_CPU_COUNT: u32 = 1;
pub const DEFAULT_MEMORY_MB: u32 = 512;
pub const DEFAULT_TIMEOUT_SEC: u32 = 300;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateProject {
    name: String,
    template: Option<String>,
    cpu_count: Option<u32>,
    #[serde(rename = "memoryMB")]
    memory_mb: Option<u32>,
    timeout_sec: Option<u32>,
    egress_allowlist: Option<Vec<String>>,
    /// Default runtime of the project's sandboxes (`netns` or `microvm`).
    runtime: Option<String>,
}

/// PATCH body: an absent or `null` field keeps the stored value; `[]` clears the allowlist.
/// PUT takes the same fields and gives absent ones their defaults (`project_replace`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct UpdateProject {
    pub(super) name: Option<String>,
    pub(super) template: Option<String>,
    pub(super) cpu_count: Option<u32>,
    #[serde(rename = "memoryMB")]
    pub(super) memory_mb: Option<u32>,
    pub(super) timeout_sec: Option<u32>,
    pub(super) egress_allowlist: Option<Vec<String>>,
    pub(super) runtime: Option<String>,
}

/// The project as the API shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    pub id: ProjectId,
    #[serde(rename = "orgID")]
    pub org: OrgId,
    /// Deprecated spelling of `orgID` (DESIGN §4 names it); the same value.
    pub org_id: OrgId,
    pub name: String,
    pub template: Option<String>,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u32,
    pub timeout_sec: u32,
    pub egress_allowlist: Vec<String>,
    /// The runtime new sandboxes of the project get unless a create names one (ADR 0025).
    #[serde(default)]
    pub runtime: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ProjectRecord> for ProjectView {
    fn from(record: ProjectRecord) -> Self {
        Self {
            id: record.id,
            org: record.org_id,
            org_id: record.org_id,
            name: record.name,
            template: record.template,
            cpu_count: record.cpu_count,
            memory_mb: record.memory_mb,
            timeout_sec: record.timeout_sec,
            egress_allowlist: record.egress_allowlist,
            runtime: record
                .runtime
                .unwrap_or_else(|| osb_proto::RuntimeName::default().to_string()),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

pub(super) fn template(value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(name)
            if name.is_empty() || name.len() > 128 || name.chars().any(char::is_whitespace) =>
        {
            Err(ApiError::invalid(
                "template must be a template name of 1-128 characters without spaces",
            ))
        }
        other => Ok(other),
    }
}

/// Resolves `{project}` (id or name) to the caller's project, or 404.
pub async fn resolve(
    state: &AppState,
    caller: Caller,
    reference: &str,
) -> Result<ProjectRecord, ApiError> {
    if let Ok(id) = reference.parse::<ProjectId>() {
        if reference.starts_with(ProjectId::PREFIX) || reference.len() == 36 {
            return Ok(state.store.get_project(caller.org_id, id).await?);
        }
    }
    state
        .store
        .find_project_by_name(caller.org_id, reference)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("project {reference:?}")))
}

async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateProject>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let new = NewProject {
        org_id: caller.org_id,
        name: validate::project_name(&body.name)?,
        template: template(body.template)?,
        cpu_count: validate::bounded(
            "cpuCount",
            body.cpu_count.unwrap_or(DEFAULT_CPU_COUNT),
            validate::CPU_RANGE,
        )?,
        memory_mb: validate::bounded(
            "memoryMB",
            body.memory_mb.unwrap_or(DEFAULT_MEMORY_MB),
            validate::MEMORY_MB_RANGE,
        )?,
        timeout_sec: validate::bounded(
            "timeoutSec",
            body.timeout_sec.unwrap_or(DEFAULT_TIMEOUT_SEC),
            validate::TIMEOUT_SEC_RANGE,
        )?,
        egress_allowlist: validate::host_patterns(
            "egressAllowlist",
            &body.egress_allowlist.unwrap_or_default(),
        )?,
        runtime: body
            .runtime
            .as_deref()
            .map(|name| validate::runtime("runtime", name).map(|r| r.to_string()))
            .transpose()?,
    };
    let record = state.store.create_project(new).await?;
    Ok(HttpResponse::Created().json(ProjectView::from(record)))
}

async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    listing_cache::serve(&state, caller, &request, async {
        let query = PageQuery::parse(&request, Listing::Projects(caller.org_id))?;
        let page = state
            .store
            .page_projects(caller.org_id, query.after_name(), query.limit)
            .await?;
        query.render(&request, page, ProjectView::from, |query, last| {
            query.name_cursor(&last.name)
        })
    })
    .await
}

async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = resolve(&state, caller, &path).await?;
    Ok(HttpResponse::Ok().json(ProjectView::from(record)))
}

async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<UpdateProject>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    // Validate everything before touching the row.
    let patch = ProjectPatch {
        name: body
            .name
            .as_deref()
            .map(validate::project_name)
            .transpose()?,
        template: template(body.template)?.map(Some),
        cpu_count: body
            .cpu_count
            .map(|v| validate::bounded("cpuCount", v, validate::CPU_RANGE))
            .transpose()?,
        memory_mb: body
            .memory_mb
            .map(|v| validate::bounded("memoryMB", v, validate::MEMORY_MB_RANGE))
            .transpose()?,
        timeout_sec: body
            .timeout_sec
            .map(|v| validate::bounded("timeoutSec", v, validate::TIMEOUT_SEC_RANGE))
            .transpose()?,
        egress_allowlist: body
            .egress_allowlist
            .as_deref()
            .map(|entries| validate::host_patterns("egressAllowlist", entries))
            .transpose()?,
        runtime: body
            .runtime
            .as_deref()
            .map(|name| validate::runtime("runtime", name).map(|r| Some(r.to_string())))
            .transpose()?,
    };
    apply(&state, caller, &path, patch).await
}

/// Applies a validated update (PATCH's merge or PUT's replacement) and lets running sandboxes
/// follow a changed allowlist at once.
pub(super) async fn apply(
    state: &AppState,
    caller: Caller,
    reference: &str,
    patch: ProjectPatch,
) -> Result<HttpResponse, ApiError> {
    let project = resolve(state, caller, reference).await?;
    let allowlist_changed = patch.egress_allowlist.is_some();
    let record = state
        .store
        .update_project(caller.org_id, project.id, patch)
        .await?;
    // Running sandboxes follow the new allowlist at once (a removed host is closed now).
    if let (true, Some(control)) = (allowlist_changed, state.control.as_ref()) {
        control.propagate_allowlist(caller.org_id, record.id).await;
    }
    Ok(HttpResponse::Ok().json(ProjectView::from(record)))
}

async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let project = resolve(&state, caller, &path).await?;
    state
        .store
        .delete_project(caller.org_id, project.id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
