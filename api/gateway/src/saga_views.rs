//! `GET /api/sagas`: the caller's org's sagas that are not over — running, unwinding, or stuck
//! (an undo kept failing; every control plane retries it on start) — oldest first, each with
//! its steps as logged (name, do/undo, started/completed/failed and a failure's message). An
//! ops view of what is in flight and what needs attention.
//!
//! It must never show a saga's parameters or step outputs (they hold user environment values
//! and sealed tokens), and never another org's saga: sagas carry their org in their parameters
//! and are filtered by it.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use osb_proto::{OrgId, SagaId};
use osb_store::{SagaLogEntry, SagaRecord};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use super::state::AppState;

pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/sagas", web::get().to(list));
}

/// One logged step action.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SagaStepView {
    pub step: String,
    /// `do` or `undo`.
    pub action: String,
    /// `started`, `completed` or `failed`.
    pub status: String,
    /// A failed action's message (sealed tokens redacted).
    pub error: Option<String>,
}

/// A saga as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SagaView {
    #[serde(rename = "sagaID")]
    pub saga_id: SagaId,
    /// `create_sandbox`, `destroy_sandbox`, `checkpoint_sandbox`, …
    pub kind: String,
    /// `running`, `unwinding` or `stuck`.
    pub status: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: Option<String>,
    /// The step logged last (where the saga stands).
    pub current_step: Option<String>,
    pub steps: Vec<SagaStepView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When a control plane last renewed its claim; a running saga whose claim is older than
    /// the lease (30 s) waits for another control plane to take it over.
    pub claimed_at: Option<DateTime<Utc>>,
}

async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let mut views = Vec::new();
    for record in state.store.list_unfinished_sagas().await? {
        if !belongs_to(&record, caller.org_id) {
            continue;
        }
        let log = state.store.saga_log(record.id).await?;
        views.push(view(record, &log));
    }
    Ok(HttpResponse::Ok().json(views))
}

fn belongs_to(record: &SagaRecord, org: OrgId) -> bool {
    record.params["orgId"].as_str() == Some(org.to_string().as_str())
}

fn view(record: SagaRecord, log: &[SagaLogEntry]) -> SagaView {
    let steps: Vec<SagaStepView> = log
        .iter()
        .map(|entry| SagaStepView {
            step: entry.step.clone(),
            action: entry.action.as_str().to_owned(),
            status: entry.status.as_str().to_owned(),
            error: entry
                .output
                .as_ref()
                .filter(|_| entry.status == osb_store::StepStatus::Failed)
                .and_then(|output| output["error"].as_str())
                .map(redact_tokens),
        })
        .collect();
    SagaView {
        saga_id: record.id,
        kind: record.kind,
        status: record.status.as_str().to_owned(),
        sandbox_id: record.params["sandboxId"].as_str().map(str::to_owned),
        current_step: last_logged(log).map(|entry| entry.step.clone()),
        steps,
        created_at: record.created_at,
        updated_at: record.updated_at,
        claimed_at: record.claimed_at,
    }
}

/// The step acted on last: the highest undo while unwinding goes backwards, so the last undo
/// row wins over any do row; otherwise the highest step.
fn last_logged(log: &[SagaLogEntry]) -> Option<&SagaLogEntry> {
    let undos = log
        .iter()
        .filter(|entry| entry.action == osb_store::StepAction::Undo)
        .min_by_key(|entry| entry.seq);
    undos.or_else(|| log.iter().max_by_key(|entry| entry.seq))
}

/// Replaces every `osb_sealed_<32 hex>` with `osb_sealed_[redacted]`: a token is a capability.
fn redact_tokens(text: &str) -> String {
    const PREFIX: &str = "osb_sealed_";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(PREFIX) {
        out.push_str(&rest[..at + PREFIX.len()]);
        rest = &rest[at + PREFIX.len()..];
        let hex = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex > 0 {
            out.push_str("[redacted]");
            rest = &rest[hex..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_errors_are_redacted() {
        let token = format!("osb_sealed_{}", "ab12".repeat(8));
        assert_eq!(
            redact_tokens(&format!("register {token} failed; {token}.")),
            "register osb_sealed_[redacted] failed; osb_sealed_[redacted]."
        );
        assert_eq!(
            redact_tokens("no token osb_sealed_"),
            "no token osb_sealed_"
        );
    }
}
