//! `GET /healthz` (the process answers) and `GET /readyz` (its dependencies answer).

use actix_web::{web, HttpResponse};
use osb_proto::ErrorCode;
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
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "database": "ok" })))
}
