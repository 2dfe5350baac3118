//! `PUT /api/projects/{project}`: replaces the whole mutable record of a project. Every field
//! the body leaves out (or sends as `null`) takes its default — `template` none, `cpuCount` 1,
//! `memoryMB` 512, `timeoutSec` 300, `egressAllowlist` `[]` (no egress), `runtime` netns — except `name`, which
//! keeps the project's current name (the path already names it). `PATCH` merges instead.
//! Validation is complete before the row is touched; running sandboxes follow a changed
//! allowlist at once, as with `PATCH`.

use actix_web::{web, HttpResponse};
use osb_store::ProjectPatch;

use super::auth::Caller;
use super::error::ApiError;
use super::projects::{
    apply, template, UpdateProject, DEFAULT_CPU_COUNT, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_SEC,
};
use super::state::AppState;
use super::validate;

pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/projects/{project}", web::put().to(replace));
}

/// The replacement as a patch that sets every mutable field (the body has PATCH's fields).
fn replacement(body: UpdateProject) -> Result<ProjectPatch, ApiError> {
    Ok(ProjectPatch {
        name: body
            .name
            .as_deref()
            .map(validate::project_name)
            .transpose()?,
        template: Some(template(body.template)?),
        cpu_count: Some(validate::bounded(
            "cpuCount",
            body.cpu_count.unwrap_or(DEFAULT_CPU_COUNT),
            validate::CPU_RANGE,
        )?),
        memory_mb: Some(validate::bounded(
            "memoryMB",
            body.memory_mb.unwrap_or(DEFAULT_MEMORY_MB),
            validate::MEMORY_MB_RANGE,
        )?),
        timeout_sec: Some(validate::bounded(
            "timeoutSec",
            body.timeout_sec.unwrap_or(DEFAULT_TIMEOUT_SEC),
            validate::TIMEOUT_SEC_RANGE,
        )?),
        egress_allowlist: Some(validate::host_patterns(
            "egressAllowlist",
            &body.egress_allowlist.unwrap_or_default(),
        )?),
        runtime: Some(
            body.runtime
                .as_deref()
                .map(|name| validate::runtime("runtime", name).map(|r| r.to_string()))
                .transpose()?,
        ),
    })
}

async fn replace(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<UpdateProject>,
) -> Result<HttpResponse, ApiError> {
    let patch = replacement(body.into_inner())?;
    apply(&state, caller, &path, patch).await
}
