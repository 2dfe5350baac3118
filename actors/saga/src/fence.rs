//! Holding a saga's claim while a step runs. A step may take longer than the lease (a microVM
//! boot, a big checkpoint), so the claim is renewed every third of a lease while the action or
//! undo is in flight; the action itself is bounded by a deadline. If a renewal finds the claim
//! taken over, or renewals keep failing until the lease may have run out, the step's future is
//! dropped at once and the executor stops: from then on another control plane owns the saga, and
//! this one must neither write nor keep acting for it. This module must never retry a step: it
//! only bounds and fences one run.

use std::future::Future;
use std::time::Duration;

use osb_proto::SagaId;
use osb_store::{SagaClaim, Store, StoreError};
use tokio::time::{interval_at, timeout, Instant, MissedTickBehavior};
use tracing::warn;

use crate::error::SagaError;

/// How one step run ended under the fence.
#[derive(Debug)]
pub(crate) enum Fenced<T> {
    /// The step finished within its deadline.
    Finished(T),
    /// The step ran past its deadline and was abandoned (its undo may still have work to do).
    DeadlineExceeded,
}

/// What the fence needs to keep a claim alive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FenceSettings {
    pub lease: Duration,
    pub step_deadline: Duration,
    /// Test hook: no renewals while the step runs (a paused or partitioned control plane).
    pub renewals: bool,
}

/// Runs `step` while renewing `claim`; `ClaimLost` as soon as the claim is gone.
pub(crate) async fn run_holding<F: Future>(
    store: &Store,
    saga: SagaId,
    claim: &SagaClaim,
    settings: FenceSettings,
    step: F,
) -> Result<Fenced<F::Output>, SagaError> {
    let every = (settings.lease / 3).max(Duration::from_millis(50));
    let mut ticks = interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_renewal = Instant::now();
    let step = timeout(settings.step_deadline, step);
    tokio::pin!(step);
    loop {
        tokio::select! {
            result = &mut step => {
                return Ok(match result {
                    Ok(output) => Fenced::Finished(output),
                    Err(_) => Fenced::DeadlineExceeded,
                });
            }
            _ = ticks.tick(), if settings.renewals => {
                match store.renew_saga_claim(saga, claim).await {
                    Ok(()) => last_renewal = Instant::now(),
                    Err(StoreError::Stale(_)) => return Err(lost(saga)),
                    Err(error) => {
                        // A store hiccup: keep the step running while the lease we last renewed
                        // still holds; past that another control plane may already own it.
                        warn!(saga = %saga, error = %error, "cannot renew the saga claim");
                        if last_renewal.elapsed() >= settings.lease {
                            return Err(lost(saga));
                        }
                    }
                }
            }
        }
    }
}

/// Maps the store's refusal of a fenced write to the engine's "someone else owns it".
pub(crate) fn fenced<T>(saga: SagaId, result: Result<T, StoreError>) -> Result<T, SagaError> {
    match result {
        Err(StoreError::Stale(_)) => Err(lost(saga)),
        other => other.map_err(SagaError::Store),
    }
}

fn lost(saga: SagaId) -> SagaError {
    SagaError::ClaimLost {
        saga: saga.to_string(),
    }
}
