//! Operations on one sandbox: exec, checkpoints, restore in place, and golden snapshots
//! (`/api/snapshots`). Exec output is returned as text (lossy UTF-8) with truncation flags;
//! the sandbox only ever holds sealed tokens, and the proxy scrubs echoed values, so no
//! secret value can be in it.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::aliases;
use super::auth::Caller;
use super::error::ApiError;
use super::pagination::{Listing, PageQuery};
use super::sandbox_view::{CheckpointView, SandboxView, SnapshotView};
use super::sandboxes::{checkpoint_id, control, sandbox_id};
use super::state::AppState;
use super::validate;
use osb_control::ExecCall;

/// Limits on an exec request.
pub const MAX_EXEC_ARGS: usize = 4096;
pub const MAX_EXEC_ARG_BYTES: usize = 256 * 1024;
pub const EXEC_TIMEOUT_RANGE: (u32, u32) = (1, 3600);

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/sandboxes/{id}/exec", web::post().to(exec))
        .route("/sandboxes/{id}/exec/stream", web::post().to(exec_stream))
        .route("/sandboxes/{id}/checkpoints", web::post().to(checkpoint))
        .route("/sandboxes/{id}/checkpoints", web::get().to(checkpoints))
        .route("/sandboxes/{id}/restore", web::post().to(restore))
        .route("/snapshots", web::post().to(create_snapshot))
        .route("/snapshots", web::get().to(snapshots));
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExecBody {
    cmd: Vec<String>,
    env: Option<BTreeMap<String, String>>,
    cwd: Option<String>,
    timeout_sec: Option<u32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecResult {
    exit_code: i32,
    stdout: String,
    stderr: String,
    stdout_truncated: bool,
    stderr_truncated: bool,
    timed_out: bool,
}

fn exec_call(body: ExecBody) -> Result<ExecCall, ApiError> {
    if body.cmd.is_empty() || body.cmd[0].is_empty() {
        return Err(ApiError::invalid(
            "cmd must name a program, e.g. {\"cmd\": [\"sh\", \"-c\", \"echo hi\"]}",
        ));
    }
    let total: usize = body.cmd.iter().map(String::len).sum();
    if body.cmd.len() > MAX_EXEC_ARGS || total > MAX_EXEC_ARG_BYTES {
        return Err(ApiError::new(
            osb_proto::ErrorCode::PayloadTooLarge,
            format!("cmd is limited to {MAX_EXEC_ARGS} arguments and {MAX_EXEC_ARG_BYTES} bytes"),
        ));
    }
    if body.cmd.iter().any(|arg| arg.contains('\0')) {
        return Err(ApiError::invalid(
            "cmd arguments must not contain NUL characters",
        ));
    }
    let cwd = match body.cwd {
        Some(cwd) if !cwd.starts_with('/') || cwd.contains('\0') || cwd.len() > 4096 => {
            return Err(ApiError::invalid(
                "cwd must be an absolute path inside the sandbox",
            ))
        }
        other => other,
    };
    Ok(ExecCall {
        cmd: body.cmd,
        env: validate::env_vars("env", &body.env.unwrap_or_default())?,
        cwd,
        timeout_sec: body
            .timeout_sec
            .map(|value| validate::bounded("timeoutSec", value, EXEC_TIMEOUT_RANGE))
            .transpose()?,
    })
}

async fn exec(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<ExecBody>,
) -> Result<HttpResponse, ApiError> {
    let id = sandbox_id(&path)?;
    let call = exec_call(body.into_inner())?;
    state.store.get_sandbox(caller.org_id, id).await?;
    let output = control(&state)?.exec(caller.org_id, id, call).await?;
    Ok(HttpResponse::Ok().json(ExecResult {
        exit_code: output.exit_code,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        stdout_truncated: output.stdout_truncated,
        stderr_truncated: output.stderr_truncated,
        timed_out: output.timed_out,
    }))
}

/// `POST /sandboxes/{id}/exec/stream`: the command's output as it happens, one JSON object per
/// line (`{"stdout": base64}`, `{"stderr": base64}`), ending with `{"exitCode", "timedOut"}` — or
/// with `{"error", "code"}` when the worker stream broke off.
async fn exec_stream(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<ExecBody>,
) -> Result<HttpResponse, ApiError> {
    use base64::Engine;
    use osb_control::ExecEvent;

    let id = sandbox_id(&path)?;
    let call = exec_call(body.into_inner())?;
    state.store.get_sandbox(caller.org_id, id).await?;
    let chunks = control(&state)?
        .exec_stream(caller.org_id, id, call)
        .await?;
    let lines = futures_util::stream::unfold(Some(chunks), |chunks| async move {
        let mut chunks = chunks?;
        let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let (line, more) = match chunks.next().await {
            Ok(Some(event)) => match event {
                ExecEvent::Stdout(bytes) => (serde_json::json!({ "stdout": encode(&bytes) }), true),
                ExecEvent::Stderr(bytes) => (serde_json::json!({ "stderr": encode(&bytes) }), true),
                ExecEvent::Exit {
                    exit_code,
                    timed_out,
                } => (
                    serde_json::json!({ "exitCode": exit_code, "timedOut": timed_out }),
                    false,
                ),
                ExecEvent::Unknown => (serde_json::json!({}), true),
            },
            Ok(None) => return None,
            Err(message) => (
                serde_json::json!({
                    "error": format!("the worker's output stream broke off: {message}"),
                    "code": "unavailable",
                }),
                false,
            ),
        };
        let bytes = bytes::Bytes::from(format!("{line}\n"));
        Some((Ok::<_, actix_web::Error>(bytes), more.then_some(chunks)))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header(("cache-control", "no-cache"))
        .streaming(lines))
}

async fn checkpoint(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = sandbox_id(&path)?;
    state.store.get_sandbox(caller.org_id, id).await?;
    let record = control(&state)?.checkpoint(caller.org_id, id).await?;
    Ok(HttpResponse::Created().json(CheckpointView::from(record)))
}

async fn checkpoints(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = sandbox_id(&path)?;
    state.store.get_sandbox(caller.org_id, id).await?;
    let query = PageQuery::parse(&request, Listing::Checkpoints(id))?;
    let page = state
        .store
        .page_checkpoints(caller.org_id, id, query.after_newest()?, query.limit)
        .await?;
    Ok(
        query.respond(&request, page, CheckpointView::from, |query, last| {
            query.newest_cursor(last.created_at, last.id)
        }),
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RestoreBody {
    #[serde(rename = "checkpointID")]
    checkpoint_id: Option<String>,
    /// Deprecated spelling of `checkpointID`.
    #[serde(rename = "checkpointId")]
    checkpoint_id_deprecated: Option<String>,
}

async fn restore(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: web::Json<RestoreBody>,
) -> Result<HttpResponse, ApiError> {
    let id = sandbox_id(&path)?;
    let body = body.into_inner();
    let checkpoint = aliases::required(
        ("checkpointID", body.checkpoint_id),
        ("checkpointId", body.checkpoint_id_deprecated),
    )?;
    let checkpoint = checkpoint_id("checkpointID", &checkpoint)?;
    state.store.get_sandbox(caller.org_id, id).await?;
    let record = control(&state)?
        .restore(caller.org_id, id, checkpoint)
        .await?;
    Ok(HttpResponse::Ok().json(SandboxView::from(record)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SnapshotBody {
    name: String,
    #[serde(rename = "sandboxID")]
    sandbox_id: Option<String>,
    /// Deprecated spelling of `sandboxID`.
    #[serde(rename = "sandboxId")]
    sandbox_id_deprecated: Option<String>,
}

async fn create_snapshot(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<SnapshotBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let name = validate::snapshot_name(&body.name)?;
    let sandbox = aliases::required(
        ("sandboxID", body.sandbox_id),
        ("sandboxId", body.sandbox_id_deprecated),
    )?;
    let id = sandbox_id(&sandbox)?;
    state.store.get_sandbox(caller.org_id, id).await?;
    let record = control(&state)?.snapshot(caller.org_id, id, &name).await?;
    Ok(HttpResponse::Created().json(SnapshotView::from(record)))
}

async fn snapshots(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = PageQuery::parse(&request, Listing::Snapshots(caller.org_id))?;
    let page = state
        .store
        .page_snapshots(caller.org_id, query.after_name(), query.limit)
        .await?;
    Ok(
        query.respond(&request, page, SnapshotView::from, |query, last| {
            query.name_cursor(&last.name)
        }),
    )
}
