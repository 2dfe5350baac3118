//! Deleting what takes storage on a worker: `DELETE /api/sandboxes/{id}/checkpoints/{checkpoint}`
//! and `DELETE /api/snapshots/{snapshot}` (a golden snapshot and the checkpoint behind it).
//! Both answer 204; an object that is not the caller's is 404 like a missing one; a checkpoint a
//! snapshot or a running restore/fork uses is 409; a worker that cannot be reached is 503 and
//! nothing is deleted.

use actix_web::{web, HttpResponse};

use super::auth::Caller;
use super::error::ApiError;
use super::sandboxes::{checkpoint_id, control, sandbox_id};
use super::state::AppState;
use super::validate;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route(
            "/sandboxes/{id}/checkpoints/{checkpoint}",
            web::delete().to(delete_checkpoint),
        )
        .route("/snapshots/{snapshot}", web::delete().to(delete_snapshot));
}

async fn delete_checkpoint(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (sandbox, checkpoint) = path.into_inner();
    let sandbox = sandbox_id(&sandbox)?;
    let checkpoint = checkpoint_id("checkpoint", &checkpoint)?;
    // Ownership first, so another org's ids are 404 even without a control plane.
    state.store.get_sandbox(caller.org_id, sandbox).await?;
    state
        .store
        .get_checkpoint(caller.org_id, checkpoint)
        .await
        .map_err(|_| ApiError::not_found(format!("checkpoint {checkpoint}")))?;
    control(&state)?
        .delete_checkpoint(caller.org_id, sandbox, checkpoint)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn delete_snapshot(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = validate::snapshot_name(&path)?;
    state
        .store
        .get_snapshot(caller.org_id, &name)
        .await
        .map_err(|_| ApiError::not_found(format!("snapshot {name}")))?;
    control(&state)?
        .delete_snapshot(caller.org_id, &name)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
