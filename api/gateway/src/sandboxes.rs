//! `/api/sandboxes`: create (fresh, from a golden snapshot, honouring `Idempotency-Key`), fork
//! from a checkpoint, list, get, delete and the allowed hosts. Every request is validated in
//! full before the control plane is asked to act; a sandbox of another org is "not found".

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use osb_proto::{CheckpointId, ErrorCode, OrgId, SandboxId};
use osb_store::{ProjectRecord, SandboxRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::aliases;
use super::auth::Caller;
use super::error::ApiError;
use super::listing_cache;
use super::pagination::{Listing, PageQuery};
use super::projects::{self, DEFAULT_CPU_COUNT, DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_SEC};
use super::sandbox_view::SandboxView;
use super::state::AppState;
use super::validate;
use osb_control::{BootFrom, CreateParams, SandboxService};

/// The default template: the worker's read-only host system tree.
pub const DEFAULT_TEMPLATE: &str = "host-system";
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/sandboxes", web::post().to(create))
        .route("/sandboxes", web::get().to(list))
        .route(
            "/sandboxes/from-checkpoint/{checkpoint}",
            web::post().to(fork),
        )
        .route("/sandboxes/{id}", web::get().to(get))
        .route("/sandboxes/{id}", web::delete().to(delete))
        .route(
            "/sandboxes/{id}/allowed-hosts",
            web::get().to(allowed_hosts),
        );
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateSandbox {
    project: Option<String>,
    template: Option<String>,
    /// The reference system's name for `template`.
    #[serde(rename = "templateID")]
    template_id: Option<String>,
    snapshot: Option<String>,
    envs: Option<BTreeMap<String, String>>,
    cpu_count: Option<u32>,
    #[serde(rename = "memoryMB")]
    memory_mb: Option<u32>,
    timeout_sec: Option<u32>,
    /// The reference system's name for `timeoutSec`.
    timeout: Option<u32>,
    metadata: Option<BTreeMap<String, String>>,
    /// `netns` or `microvm` (default: the project's runtime, else netns; ADR 0025).
    runtime: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ForkSandbox {
    project: Option<String>,
    envs: Option<BTreeMap<String, String>>,
    metadata: Option<BTreeMap<String, String>>,
}

/// The control plane, or 503 when this gateway runs without one.
pub fn control(state: &AppState) -> Result<&SandboxService, ApiError> {
    state.control.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unavailable,
            "this gateway runs without a control plane; start the platform with `osbd up` or `osbd control`",
        )
    })
}

/// Parses a sandbox id from the path (malformed → 400).
pub fn sandbox_id(text: &str) -> Result<SandboxId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::invalid(format!(
            "{:?} is not a sandbox id (expected sbx_…)",
            text.chars().take(80).collect::<String>()
        ))
    })
}

/// Parses a checkpoint id (malformed → 400).
pub fn checkpoint_id(field: &str, text: &str) -> Result<CheckpointId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::invalid(format!(
            "{field} {:?} is not a checkpoint id (expected chk_…)",
            text.chars().take(80).collect::<String>()
        ))
    })
}

/// The sandbox id an `Idempotency-Key` stands for in this org: the same key always names the
/// same sandbox, so a retried create finds the first one.
fn idempotent_sandbox_id(org: OrgId, request: &HttpRequest) -> Result<SandboxId, ApiError> {
    let Some(header) = request.headers().get("idempotency-key") else {
        return Ok(SandboxId::new());
    };
    let key = header
        .to_str()
        .ok()
        .filter(|key| !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ))
        })?;
    let digest = Sha256::new()
        .chain_update(org.to_string())
        .chain_update([0u8])
        .chain_update(key)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Ok(SandboxId::from_uuid(
        uuid::Builder::from_random_bytes(bytes).into_uuid(),
    ))
}

struct Sizes {
    template: String,
    cpu_count: u32,
    memory_mb: u32,
    timeout_sec: u32,
}

impl Sizes {
    /// The create saga's parameters for a new sandbox of these sizes.
    fn into_params(
        self,
        sandbox_id: SandboxId,
        org_id: OrgId,
        project: Option<ProjectRecord>,
        (envs, metadata): (BTreeMap<String, String>, BTreeMap<String, String>),
        boot: BootFrom,
    ) -> CreateParams {
        CreateParams {
            sandbox_id,
            org_id,
            project_id: project.as_ref().map(|p| p.id),
            project_name: project.map(|p| p.name),
            template: self.template,
            cpu_count: self.cpu_count,
            memory_mb: self.memory_mb,
            timeout_sec: self.timeout_sec,
            envs,
            boot,
            metadata,
            runtime: osb_proto::RuntimeName::default(),
        }
    }
}

fn sizes(
    project: Option<&ProjectRecord>,
    template: Option<String>,
    cpu_count: Option<u32>,
    memory_mb: Option<u32>,
    timeout_sec: Option<u32>,
) -> Result<Sizes, ApiError> {
    let template = match template {
        Some(name)
            if name.is_empty() || name.len() > 128 || name.chars().any(char::is_whitespace) =>
        {
            return Err(ApiError::invalid(
                "template must be a template name of 1-128 characters without spaces",
            ))
        }
        Some(name) => name,
        None => project
            .and_then(|project| project.template.clone())
            .unwrap_or_else(|| DEFAULT_TEMPLATE.to_owned()),
    };
    Ok(Sizes {
        template,
        cpu_count: validate::bounded(
            "cpuCount",
            cpu_count
                .or(project.map(|p| p.cpu_count))
                .unwrap_or(DEFAULT_CPU_COUNT),
            validate::CPU_RANGE,
        )?,
        memory_mb: validate::bounded(
            "memoryMB",
            memory_mb
                .or(project.map(|p| p.memory_mb))
                .unwrap_or(DEFAULT_MEMORY_MB),
            validate::MEMORY_MB_RANGE,
        )?,
        timeout_sec: validate::bounded(
            "timeoutSec",
            timeout_sec
                .or(project.map(|p| p.timeout_sec))
                .unwrap_or(DEFAULT_TIMEOUT_SEC),
            validate::TIMEOUT_SEC_RANGE,
        )?,
    })
}

async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    body: web::Json<CreateSandbox>,
) -> Result<HttpResponse, ApiError> {
    let control = control(&state)?;
    let body = body.into_inner();
    let sandbox_id = idempotent_sandbox_id(caller.org_id, &request)?;
    let envs = validate::env_vars("envs", &body.envs.unwrap_or_default())?;
    let metadata = aliases::metadata(body.metadata)?;
    let template = aliases::either(
        ("template", body.template),
        ("templateID", body.template_id),
    )?;
    let timeout_sec = aliases::either(("timeoutSec", body.timeout_sec), ("timeout", body.timeout))?;
    let project = match body.project.as_deref() {
        Some(reference) => Some(projects::resolve(&state, caller, reference).await?),
        None => None,
    };
    let sizes = sizes(
        project.as_ref(),
        template,
        body.cpu_count,
        body.memory_mb,
        timeout_sec,
    )?;
    let boot = match body.snapshot.as_deref() {
        Some(name) => {
            control
                .snapshot_boot(caller.org_id, &validate::snapshot_name(name)?)
                .await?
        }
        None => BootFrom::Fresh,
    };
    let runtime = match body.runtime.as_deref() {
        Some(name) => validate::runtime("runtime", name)?,
        None => project
            .as_ref()
            .and_then(|project| project.runtime.as_deref())
            .map(|name| validate::runtime("project runtime", name))
            .transpose()?
            .unwrap_or_default(),
    };
    if let (
        BootFrom::Checkpoint {
            runtime: taken_on, ..
        },
        Some(_),
    ) = (&boot, &body.runtime)
    {
        if *taken_on != runtime {
            return Err(ApiError::invalid(format!(
                "runtime: snapshot {} was taken on the {taken_on} runtime and boots only there; leave runtime out or set it to {taken_on}",
                body.snapshot.as_deref().unwrap_or_default()
            )));
        }
    }
    let mut params = sizes.into_params(sandbox_id, caller.org_id, project, (envs, metadata), boot);
    params.runtime = runtime;
    respond_created(control, params).await
}

async fn respond_created(
    control: &SandboxService,
    params: CreateParams,
) -> Result<HttpResponse, ApiError> {
    let (record, fresh) = control.create_or_replay(params).await?;
    let view = SandboxView::from(record);
    Ok(if fresh {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// Whether the request came without a body (the fork's body is optional).
fn has_no_body(request: &HttpRequest) -> bool {
    let headers = request.headers();
    !headers.contains_key("transfer-encoding")
        && headers
            .get("content-length")
            .is_none_or(|length| length.as_bytes() == b"0")
}

async fn fork(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    body: Result<web::Json<ForkSandbox>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    // No body means no options; a body that is there must be valid (malformed JSON or an
    // unknown field is refused, never silently ignored).
    let body = match body {
        Ok(body) => body.into_inner(),
        Err(_) if has_no_body(&request) => ForkSandbox {
            project: None,
            envs: None,
            metadata: None,
        },
        Err(error) => return Err(error),
    };
    Ok(fork_with(state, caller, request, path, body).await?)
}

async fn fork_with(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    body: ForkSandbox,
) -> Result<HttpResponse, ApiError> {
    let control = control(&state)?;
    let checkpoint = checkpoint_id("checkpoint", &path)?;
    let sandbox_id = idempotent_sandbox_id(caller.org_id, &request)?;
    let envs = validate::env_vars("envs", &body.envs.unwrap_or_default())?;
    let metadata = aliases::metadata(body.metadata)?;
    let source = state
        .store
        .get_checkpoint(caller.org_id, checkpoint)
        .await
        .map_err(|_| ApiError::not_found(format!("checkpoint {checkpoint}")))?;
    let parent: Option<SandboxRecord> = match source.sandbox_id {
        Some(id) => state.store.get_sandbox(caller.org_id, id).await.ok(),
        None => None,
    };
    let project = match (body.project.as_deref(), source.project_id) {
        (Some(reference), _) => Some(projects::resolve(&state, caller, reference).await?),
        (None, Some(id)) => state.store.get_project(caller.org_id, id).await.ok(),
        (None, None) => None,
    };
    let template = parent.as_ref().map(|p| p.template.clone());
    let sizes = sizes(
        project.as_ref(),
        template,
        parent.as_ref().map(|p| p.cpu_count),
        parent.as_ref().map(|p| p.memory_mb),
        parent.as_ref().map(|p| p.timeout_sec),
    )?;
    let boot = BootFrom::Checkpoint {
        checkpoint_id: source.id,
        worker: source.worker,
        runtime: osb_control::runtime_of_row(parent.as_ref().and_then(|p| p.runtime.as_deref())),
    };
    let params = sizes.into_params(sandbox_id, caller.org_id, project, (envs, metadata), boot);
    respond_created(control, params).await
}

async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    listing_cache::serve(&state, caller, &request, async {
        let query = PageQuery::parse(&request, Listing::Sandboxes(caller.org_id))?;
        let page = state
            .store
            .page_sandboxes(caller.org_id, query.after_newest()?, query.limit)
            .await?;
        query.render(&request, page, SandboxView::from, |query, last| {
            query.newest_cursor(last.created_at, last.id)
        })
    })
    .await
}

async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = sandbox_id(&path)?;
    let record = state.store.get_sandbox(caller.org_id, id).await?;
    Ok(HttpResponse::Ok().json(SandboxView::from(record)))
}

async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = sandbox_id(&path)?;
    // Look first so a foreign or unknown id is 404 even without a control plane.
    state.store.get_sandbox(caller.org_id, id).await?;
    let record = control(&state)?.destroy(caller.org_id, id).await?;
    Ok(HttpResponse::Ok().json(SandboxView::from(record)))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretHosts {
    name: String,
    allowed_hosts: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AllowedHosts {
    #[serde(rename = "sandboxID")]
    sandbox_id: SandboxId,
    egress_allowlist: Vec<String>,
    secrets: Vec<SecretHosts>,
}

async fn allowed_hosts(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = sandbox_id(&path)?;
    let record = state.store.get_sandbox(caller.org_id, id).await?;
    let (egress_allowlist, secrets) = match record.project_id {
        Some(project_id) => match state.store.get_project(caller.org_id, project_id).await {
            Ok(project) => {
                let secrets = state
                    .store
                    .list_secrets(project_id)
                    .await?
                    .into_iter()
                    .map(|secret| SecretHosts {
                        allowed_hosts: secret
                            .allowed_hosts
                            .unwrap_or_else(|| project.egress_allowlist.clone()),
                        name: secret.name,
                    })
                    .collect();
                (project.egress_allowlist, secrets)
            }
            Err(_) => (Vec::new(), Vec::new()),
        },
        None => (Vec::new(), Vec::new()),
    };
    Ok(HttpResponse::Ok().json(AllowedHosts {
        sandbox_id: id,
        egress_allowlist,
        secrets,
    }))
}
