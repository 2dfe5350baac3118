//! Counters of the control plane, rendered by `GET /metrics`: sandbox sagas by outcome and
//! secret fan-out pushes by result. Plain atomics: cheap, lock-free, reset on restart (the
//! scraper computes rates).

use std::sync::atomic::{AtomicU64, Ordering};

/// The control plane's counters.
#[derive(Debug, Default)]
pub struct ControlMetrics {
    pub creates_completed: AtomicU64,
    pub creates_failed: AtomicU64,
    pub sagas_resumed: AtomicU64,
    pub fanout_refreshed: AtomicU64,
    pub fanout_failed: AtomicU64,
}

impl ControlMetrics {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// Prometheus text lines for these counters.
    pub fn render(&self, out: &mut String) {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        out.push_str("# HELP osb_sandbox_creates_total Sandbox create sagas by outcome.\n");
        out.push_str("# TYPE osb_sandbox_creates_total counter\n");
        out.push_str(&format!(
            "osb_sandbox_creates_total{{outcome=\"completed\"}} {}\n",
            read(&self.creates_completed)
        ));
        out.push_str(&format!(
            "osb_sandbox_creates_total{{outcome=\"failed\"}} {}\n",
            read(&self.creates_failed)
        ));
        out.push_str("# HELP osb_sagas_resumed_total Unfinished sagas driven to an end after a restart or takeover.\n");
        out.push_str("# TYPE osb_sagas_resumed_total counter\n");
        out.push_str(&format!(
            "osb_sagas_resumed_total {}\n",
            read(&self.sagas_resumed)
        ));
        out.push_str("# HELP osb_secret_fanout_total Secret changes pushed to running sandboxes, by result.\n");
        out.push_str("# TYPE osb_secret_fanout_total counter\n");
        out.push_str(&format!(
            "osb_secret_fanout_total{{result=\"refreshed\"}} {}\n",
            read(&self.fanout_refreshed)
        ));
        out.push_str(&format!(
            "osb_secret_fanout_total{{result=\"failed\"}} {}\n",
            read(&self.fanout_failed)
        ));
    }
}
