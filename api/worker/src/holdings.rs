//! What a worker holds right now (sandbox count, CPUs, memory), kept by the worker service as
//! sandboxes are created and destroyed, and reported in heartbeats so placement sees real usage.

use std::collections::HashMap;
use std::sync::Mutex;

use osb_placement::Usage;
use osb_proto::SandboxId;

/// Live sandboxes and their sizes.
#[derive(Debug, Default)]
pub struct Holdings(Mutex<HashMap<SandboxId, (u32, u32)>>);

impl Holdings {
    pub(crate) fn add(&self, id: SandboxId, cpu_count: u32, memory_mb: u32) {
        self.lock().insert(id, (cpu_count, memory_mb));
    }

    pub(crate) fn remove(&self, id: SandboxId) {
        self.lock().remove(&id);
    }

    /// Whether `id` is held right now.
    pub fn holds(&self, id: SandboxId) -> bool {
        self.lock().contains_key(&id)
    }

    /// The ids of every sandbox held.
    pub fn sandboxes(&self) -> Vec<SandboxId> {
        self.lock().keys().copied().collect()
    }

    /// The totals as a heartbeat reports them.
    pub fn usage(&self) -> Usage {
        let held = self.lock();
        Usage {
            sandboxes: u32::try_from(held.len()).unwrap_or(u32::MAX),
            cpu_count: held.values().map(|(cpu, _)| *cpu).sum(),
            memory_mb: held.values().map(|(_, memory)| u64::from(*memory)).sum(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SandboxId, (u32, u32)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
