//! `GET /metrics`: Prometheus text. Sandboxes by status (from the database, all orgs — counts
//! only), live workers, unfinished sagas, and the control plane's counters. It names no org,
//! no secret and no host, so it may be scraped without an API key.

use actix_web::{web, HttpResponse};

use super::error::ApiError;
use super::state::AppState;

pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut out = String::new();
    out.push_str("# HELP osb_sandboxes Sandboxes by status.\n# TYPE osb_sandboxes gauge\n");
    for (status, count) in state.store.count_sandboxes_by_status().await? {
        out.push_str(&format!("osb_sandboxes{{status=\"{status}\"}} {count}\n"));
    }
    let unfinished = state.store.list_unfinished_sagas().await?.len();
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
