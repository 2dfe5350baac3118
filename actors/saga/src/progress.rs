//! Progress reports: after the executor has logged a step's outcome in the store, it tells an
//! optional `ProgressSink` (the control plane publishes `osb.saga.<id>.<step>.<outcome>` for
//! dashboards). The store stays the truth; a report is a notification and may be lost.
//!
//! A sink must return at once and never fail the saga; it receives the saga's parameters to
//! pick ids from (org, sandbox) and must never forward them whole: step outputs and parameters
//! may hold sealed tokens and user environment values.

use osb_proto::SagaId;
use osb_store::{StepAction, StepStatus};

/// One logged step outcome (`Completed` or `Failed`; `Started` is not reported).
#[derive(Debug, Clone, Copy)]
pub struct StepProgress<'a> {
    pub saga: SagaId,
    /// The saga's kind (`create_sandbox`, …).
    pub kind: &'a str,
    /// The saga's parameters as logged (read ids from them; never forward them).
    pub params: &'a serde_json::Value,
    pub step: &'a str,
    pub action: StepAction,
    pub status: StepStatus,
}

/// Receives progress reports. Implementations must not block.
pub trait ProgressSink: Send + Sync + std::fmt::Debug {
    fn step_logged(&self, progress: StepProgress<'_>);
}
