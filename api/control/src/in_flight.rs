//! The sagas this control-plane process is driving right now. The resume loop claims unfinished
//! sagas, and a claim by the same owner always succeeds, so without this set it would drive a
//! saga a second time while the request that started it is still running it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use osb_proto::SagaId;

/// Saga ids being driven in this process.
#[derive(Debug, Default, Clone)]
pub(crate) struct InFlight(Arc<Mutex<HashSet<SagaId>>>);

/// Removes its saga from the set when dropped (the drive ended, however it ended).
#[derive(Debug)]
pub(crate) struct Driving {
    set: InFlight,
    saga: SagaId,
}

impl Drop for Driving {
    fn drop(&mut self) {
        self.set.lock().remove(&self.saga);
    }
}

impl InFlight {
    /// Marks `saga` as driven here; `None` when it already is.
    pub(crate) fn enter(&self, saga: SagaId) -> Option<Driving> {
        self.lock().insert(saga).then(|| Driving {
            set: self.clone(),
            saga,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<SagaId>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
