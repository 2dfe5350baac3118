//! The worker-wide state every isolating runtime needs: validated naming, the address slots,
//! the resolver and its policy table, the checkpoint store and the cgroup layout. `start` checks
//! the configuration, creates the private data directories, reaps what a previous worker with
//! the same prefix left behind, and starts the resolver. This module must never create a
//! sandbox object itself.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::checkpoint::CheckpointStore;
use crate::config::NetnsConfig;
use crate::dns::{PolicyTable, Resolver};
use crate::error::RuntimeError;
use crate::events::EventSink;
use crate::host::{cgroup, reaper};
use crate::naming::Naming;
use crate::pool::{SlotAddresses, SlotAllocator};

pub(crate) struct HostContext {
    pub(crate) config: NetnsConfig,
    pub(crate) naming: Naming,
    pub(crate) cgroup_version: cgroup::CgroupVersion,
    pub(crate) slots: Mutex<SlotAllocator>,
    pub(crate) store: CheckpointStore,
    pub(crate) policies: Arc<PolicyTable>,
    pub(crate) resolver: Resolver,
}

impl HostContext {
    /// Validates `config`, prepares the data dir, reaps orphans and starts the resolver.
    pub(crate) async fn start(
        config: NetnsConfig,
        sink: Arc<dyn EventSink>,
    ) -> Result<Self, RuntimeError> {
        let naming = Naming::new(&config.name_prefix).map_err(|e| RuntimeError::Setup {
            step: "reading the runtime configuration",
            detail: e.to_string(),
        })?;
        let data_text = config.data_dir.display().to_string();
        if !config.data_dir.is_absolute() || data_text.contains([':', ',', '\n', ' ']) {
            return Err(RuntimeError::Setup {
                step: "reading the runtime configuration",
                detail: format!("data dir {data_text:?} must be absolute without `:`, `,` or spaces (overlayfs options)"),
            });
        }
        for private in ["sandboxes", "checkpoints", "snapshots"] {
            // Layers and disks may hold tokens the sandbox wrote: only the worker may read them.
            let dir = config.data_dir.join(private);
            std::fs::create_dir_all(&dir)
                .and_then(|()| {
                    std::fs::set_permissions(
                        &dir,
                        std::os::unix::fs::PermissionsExt::from_mode(0o700),
                    )
                })
                .map_err(|e| RuntimeError::io(format!("creating {}", dir.display()), e))?;
        }
        let cgroup_version = cgroup::CgroupVersion::detect(Path::new(cgroup::CGROUP_ROOT));
        reaper::reap(&reaper::Owned {
            naming: &naming,
            cgroup_version,
            data_dir: &config.data_dir,
        })
        .await?;
        let policies = Arc::new(PolicyTable::default());
        let resolver = Resolver::start(
            config.resolver_bind,
            Arc::clone(&policies),
            config.address_pool.dns_answer(),
            sink,
        )
        .await?;
        Ok(Self {
            slots: Mutex::new(SlotAllocator::new(config.address_pool)),
            store: CheckpointStore::new(&config.data_dir),
            config,
            naming,
            cgroup_version,
            policies,
            resolver,
        })
    }

    /// What the census and reaper look at for this worker.
    pub(crate) fn owned(&self) -> reaper::Owned<'_> {
        reaper::Owned {
            naming: &self.naming,
            cgroup_version: self.cgroup_version,
            data_dir: &self.config.data_dir,
        }
    }

    /// A free slot of the pool, or a clear refusal.
    pub(crate) fn allocate_slot(&self) -> Result<SlotAddresses, RuntimeError> {
        self.slots
            .lock()
            .ok()
            .and_then(|mut slots| slots.allocate())
            .ok_or_else(|| RuntimeError::PoolExhausted {
                pool: self.config.address_pool.to_string(),
            })
    }

    /// Gives a slot back (after its link is gone).
    pub(crate) fn release_slot(&self, slot: u32) {
        if let Ok(slots) = self.slots.lock().as_mut() {
            slots.release(slot);
        }
    }
}
