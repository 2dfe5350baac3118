//! `GET /metrics`: Prometheus text. Sandboxes by status (from the database, all orgs — counts
//! only) and unfinished sagas, both cached for a while (`metrics_cache`: no store query per
//! scrape), live workers, and the control plane's counters. It names no org, no secret and no
//! host, so it may be scraped without an API key unless the operator set a scrape key.

use actix_web::{web, HttpRequest, HttpResponse};
use osb_proto::ErrorCode;

use super::auth::presented_key;

use super::error::ApiError;
use super::state::AppState;

pub async fn metrics(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !state.metrics.admits(presented_key(&request).as_deref()) {
        return Err(ApiError::new(
            ErrorCode::MissingApiKey,
            "this gateway's metrics need the scrape key (OPENSANDBOX_METRICS_KEY) as `Authorization: Bearer <key>`",
        ));
    }
    let gauges = state.metrics.gauges(&state.store).await?;
    let mut out = String::new();
    out.push_str("# HELP osb_sandboxes Sandboxes by status.\n# TYPE osb_sandboxes gauge\n");
    for (status, count) in &gauges.sandboxes_by_status {
        out.push_str(&format!("osb_sandboxes{{status=\"{status}\"}} {count}\n"));
    }
    let unfinished = gauges.unfinished_sagas;
    out.push_str("# HELP osb_sagas_unfinished Sagas not yet completed or unwound.\n# TYPE osb_sagas_unfinished gauge\n");
    out.push_str(&format!("osb_sagas_unfinished {unfinished}\n"));
    if let Some(control) = state.control.as_ref() {
        let live = control.live_worker_count();
        out.push_str("# HELP osb_workers_live Workers with a recent heartbeat.\n# TYPE osb_workers_live gauge\n");
        out.push_str(&format!("osb_workers_live {live}\n"));
        control.metrics().render(&mut out);
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out))
}
