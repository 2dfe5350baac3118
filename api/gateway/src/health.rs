//! `GET /healthz` (the process answers) and `GET /readyz` (its dependencies answer, and the
//! vault can serve). A locked vault (a new primary key that would bury stored secrets, ADR 0019)
//! makes the gateway not ready, with the vault's own sentence as the reason; a vault that works
//! but cannot open some stored secrets is ready and says `degraded` with the reason.

use actix_web::{web, HttpResponse};
use osb_proto::ErrorCode;
use osb_vault::VaultReadiness;
use serde_json::json;

use super::error::ApiError;
use super::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|_| ApiError::new(ErrorCode::Unavailable, "the database does not answer"))?;
    let readiness = state.vault.readiness().await.map_err(|_| {
        ApiError::new(
            ErrorCode::Unavailable,
            "the secret vault could not check its keys",
        )
    })?;
    match readiness {
        VaultReadiness::Ready => {
            Ok(HttpResponse::Ok()
                .json(json!({ "status": "ready", "database": "ok", "vault": "ok" })))
        }
        VaultReadiness::Degraded(reason) => Ok(HttpResponse::Ok().json(json!({
            "status": "ready",
            "database": "ok",
            "vault": "degraded",
            "reason": reason,
        }))),
        VaultReadiness::Locked(reason) => Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("not ready: the secret vault is locked: {reason}"),
        )),
    }
}
