//! The placement core: a view of workers built from heartbeats, a choice of worker for each new
//! sandbox, and lost-worker detection. Pure: every method takes `now` (milliseconds on any
//! monotonic clock), so tests drive time by hand.
//!
//! Rules (ADR 0009): a worker is live while its last heartbeat is younger than `lost_after`;
//! a sandbox goes to a live worker with room for its cpu, memory and sandbox count, counting
//! reservations made since that worker's last heartbeat and serving the requested runtime
//! (ADR 0025: a development worker serves `netns` requests only of orgs that opted in);
//! isolated (`netns`) workers are preferred over development ones; among equals, the one with the most free memory, then the
//! lowest name, wins (deterministic). A worker that misses heartbeats is reported lost once;
//! it comes back when it heartbeats again.

use std::collections::BTreeMap;

use osb_proto::{RuntimeName, WorkerId};

use crate::heartbeat::{Usage, WorkerHeartbeat};

/// What a new sandbox needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacementRequest {
    pub cpu_count: u32,
    pub memory_mb: u64,
    /// The runtime the sandbox asks for.
    pub runtime: RuntimeName,
    /// Whether the sandbox's org opted in to development (cooperative) workers.
    pub allow_development: bool,
}

impl PlacementRequest {
    /// A `netns` request of this size from an org that did not opt in to development workers.
    pub fn netns(cpu_count: u32, memory_mb: u64) -> Self {
        Self {
            cpu_count,
            memory_mb,
            runtime: RuntimeName::Netns,
            allow_development: false,
        }
    }
}

/// Why no worker was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("no worker is running: start one with `osbd worker` (or use `osbd up`)")]
    NoLiveWorker,
    #[error("no live worker offers the {runtime} runtime ({live} live){}", development_hint(*.development_only))]
    NoRuntime {
        runtime: RuntimeName,
        live: usize,
        /// Some live worker would serve it with its development runtime, which the org did not
        /// opt in to.
        development_only: bool,
    },
    #[error("no live worker has room for {cpu_count} CPU and {memory_mb} MiB ({live} live); destroy idle sandboxes or add a worker")]
    NoCapacity {
        cpu_count: u32,
        memory_mb: u64,
        live: usize,
    },
}

fn development_hint(development_only: bool) -> &'static str {
    if development_only {
        "; the only candidates run the development runtime (cooperative egress), which this org has not opted in to: start a worker as root with the netns runtime, or opt the org in with `osbd admin org NAME --development-runtime on`"
    } else {
        "; start a worker that offers it, or choose another runtime"
    }
}

/// A worker's state as placement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerStatus {
    Live,
    Lost,
}

/// One worker in the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerView {
    pub heartbeat: WorkerHeartbeat,
    pub last_seen_ms: u64,
    pub status: WorkerStatus,
    /// Reservations made since the last heartbeat (not yet reflected in its usage).
    pub reserved: Usage,
}

impl WorkerView {
    fn committed(&self) -> Usage {
        let usage = self.heartbeat.usage;
        Usage {
            sandboxes: usage.sandboxes.saturating_add(self.reserved.sandboxes),
            cpu_count: usage.cpu_count.saturating_add(self.reserved.cpu_count),
            memory_mb: usage.memory_mb.saturating_add(self.reserved.memory_mb),
        }
    }

    fn fits(&self, request: PlacementRequest) -> bool {
        let capacity = self.heartbeat.capacity;
        let committed = self.committed();
        committed.sandboxes < capacity.sandboxes
            && committed.cpu_count.saturating_add(request.cpu_count) <= capacity.cpu_count
            && committed.memory_mb.saturating_add(request.memory_mb) <= capacity.memory_mb
    }

    fn free_memory(&self) -> u64 {
        self.heartbeat
            .capacity
            .memory_mb
            .saturating_sub(self.committed().memory_mb)
    }
}

/// The control plane's view of its workers.
#[derive(Debug, Clone)]
pub struct PlacementCore {
    lost_after_ms: u64,
    workers: BTreeMap<WorkerId, WorkerView>,
}

impl PlacementCore {
    /// A core that declares a worker lost after `lost_after_ms` without a heartbeat.
    pub fn new(lost_after_ms: u64) -> Self {
        Self {
            lost_after_ms,
            workers: BTreeMap::new(),
        }
    }

    /// Records a heartbeat. Returns true when it brings a lost (or new) worker to life.
    pub fn observe(&mut self, heartbeat: WorkerHeartbeat, now_ms: u64) -> bool {
        match self.workers.get_mut(&heartbeat.worker_id) {
            Some(view) => {
                let revived = view.status == WorkerStatus::Lost;
                view.heartbeat = heartbeat;
                view.last_seen_ms = now_ms;
                view.status = WorkerStatus::Live;
                // The heartbeat's usage now includes what was reserved before it.
                view.reserved = Usage::default();
                revived
            }
            None => {
                self.workers.insert(
                    heartbeat.worker_id,
                    WorkerView {
                        heartbeat,
                        last_seen_ms: now_ms,
                        status: WorkerStatus::Live,
                        reserved: Usage::default(),
                    },
                );
                true
            }
        }
    }

    /// Marks workers silent for too long as lost; returns the ones lost just now.
    pub fn expire(&mut self, now_ms: u64) -> Vec<WorkerId> {
        let mut lost = Vec::new();
        for (id, view) in &mut self.workers {
            let silent = now_ms.saturating_sub(view.last_seen_ms);
            if view.status == WorkerStatus::Live && silent >= self.lost_after_ms {
                view.status = WorkerStatus::Lost;
                view.reserved = Usage::default();
                lost.push(*id);
            }
        }
        lost
    }

    /// Chooses a worker for a sandbox and reserves room on it.
    pub fn place(
        &mut self,
        request: PlacementRequest,
        now_ms: u64,
    ) -> Result<WorkerId, PlacementError> {
        self.expire(now_ms);
        let live: Vec<&WorkerView> = self
            .workers
            .values()
            .filter(|view| view.status == WorkerStatus::Live)
            .collect();
        if live.is_empty() {
            return Err(PlacementError::NoLiveWorker);
        }
        let serving: Vec<&WorkerView> = live
            .iter()
            .copied()
            .filter(|view| {
                view.heartbeat
                    .serves(request.runtime, request.allow_development)
            })
            .collect();
        if serving.is_empty() {
            return Err(PlacementError::NoRuntime {
                runtime: request.runtime,
                live: live.len(),
                development_only: live
                    .iter()
                    .any(|view| view.heartbeat.serves_only_by_development(request.runtime)),
            });
        }
        let chosen = serving
            .iter()
            .filter(|view| view.fits(request))
            .max_by(|a, b| {
                let isolated = |view: &WorkerView| view.heartbeat.isolation == "netns";
                isolated(a)
                    .cmp(&isolated(b))
                    .then(a.free_memory().cmp(&b.free_memory()))
                    // Lower name wins ties: reverse so that max_by picks it.
                    .then(b.heartbeat.name.cmp(&a.heartbeat.name))
            })
            .map(|view| view.heartbeat.worker_id)
            .ok_or(PlacementError::NoCapacity {
                cpu_count: request.cpu_count,
                memory_mb: request.memory_mb,
                live: serving.len(),
            })?;
        if let Some(view) = self.workers.get_mut(&chosen) {
            view.reserved.sandboxes = view.reserved.sandboxes.saturating_add(1);
            view.reserved.cpu_count = view.reserved.cpu_count.saturating_add(request.cpu_count);
            view.reserved.memory_mb = view.reserved.memory_mb.saturating_add(request.memory_mb);
        }
        Ok(chosen)
    }

    /// One worker's view.
    pub fn worker(&self, id: WorkerId) -> Option<&WorkerView> {
        self.workers.get(&id)
    }

    /// Every worker, by id.
    pub fn workers(&self) -> impl Iterator<Item = &WorkerView> {
        self.workers.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heartbeat::Capacity;

    fn heartbeat(name: &str, id: WorkerId, used_memory: u64, isolation: &str) -> WorkerHeartbeat {
        WorkerHeartbeat {
            worker_id: id,
            name: name.parse().unwrap(),
            grpc_addr: "127.0.0.1:7000".to_owned(),
            isolation: isolation.to_owned(),
            runtimes: Vec::new(),
            capacity: Capacity {
                sandboxes: 3,
                cpu_count: 4,
                memory_mb: 4096,
            },
            usage: Usage {
                sandboxes: 0,
                cpu_count: 0,
                memory_mb: used_memory,
            },
            sequence: 1,
        }
    }

    const SMALL: PlacementRequest = PlacementRequest {
        cpu_count: 1,
        memory_mb: 512,
        runtime: RuntimeName::Netns,
        allow_development: true,
    };

    #[test]
    fn no_workers_is_explained() {
        let mut core = PlacementCore::new(6_000);
        let error = core.place(SMALL, 0).unwrap_err();
        assert!(error.to_string().contains("osbd worker"));
    }

    #[test]
    fn spreads_by_free_memory_counting_reservations() {
        let mut core = PlacementCore::new(6_000);
        let (a, b) = (WorkerId::new(), WorkerId::new());
        core.observe(heartbeat("a", a, 0, "netns"), 0);
        core.observe(heartbeat("b", b, 0, "netns"), 0);
        let picks: Vec<WorkerId> = (0..4).map(|_| core.place(SMALL, 10).unwrap()).collect();
        assert_eq!(
            picks,
            vec![a, b, a, b],
            "reservations spread the load between heartbeats"
        );
        // Each worker holds at most 3 sandboxes.
        core.place(SMALL, 10).unwrap();
        core.place(SMALL, 10).unwrap();
        assert!(matches!(
            core.place(SMALL, 10),
            Err(PlacementError::NoCapacity { live: 2, .. })
        ));
    }

    #[test]
    fn isolated_workers_are_preferred_and_big_requests_refused() {
        let mut core = PlacementCore::new(6_000);
        let (dev, iso) = (WorkerId::new(), WorkerId::new());
        core.observe(heartbeat("dev", dev, 0, "development"), 0);
        core.observe(heartbeat("iso", iso, 3000, "netns"), 0);
        assert_eq!(core.place(SMALL, 1).unwrap(), iso);
        let huge = PlacementRequest {
            memory_mb: 8192,
            ..SMALL
        };
        assert!(core.place(huge, 1).is_err());
    }

    #[test]
    fn silent_workers_are_lost_once_and_come_back() {
        let mut core = PlacementCore::new(6_000);
        let a = WorkerId::new();
        assert!(core.observe(heartbeat("a", a, 0, "netns"), 0));
        assert!(core.expire(5_999).is_empty());
        assert_eq!(core.expire(6_000), vec![a]);
        assert!(core.expire(9_000).is_empty(), "reported once");
        assert_eq!(core.place(SMALL, 9_000), Err(PlacementError::NoLiveWorker));
        assert!(
            core.observe(heartbeat("a", a, 0, "netns"), 9_500),
            "revived"
        );
        assert_eq!(core.place(SMALL, 9_600).unwrap(), a);
    }

    fn offering(name: &str, id: WorkerId, runtimes: &[&str]) -> WorkerHeartbeat {
        let isolation = if runtimes.contains(&"dev") {
            "development"
        } else {
            "netns"
        };
        WorkerHeartbeat {
            runtimes: runtimes.iter().map(|r| (*r).to_owned()).collect(),
            ..heartbeat(name, id, 0, isolation)
        }
    }

    #[test]
    fn development_workers_serve_only_orgs_that_opted_in() {
        let mut core = PlacementCore::new(6_000);
        let dev = WorkerId::new();
        core.observe(offering("dev", dev, &["dev"]), 0);
        let strict = PlacementRequest::netns(1, 512);
        let error = core.place(strict, 1).unwrap_err();
        assert!(
            matches!(
                error,
                PlacementError::NoRuntime {
                    runtime: RuntimeName::Netns,
                    live: 1,
                    development_only: true
                }
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("--development-runtime on"),
            "{error}"
        );
        let opted_in = PlacementRequest {
            allow_development: true,
            ..strict
        };
        assert_eq!(core.place(opted_in, 1).unwrap(), dev);
    }

    #[test]
    fn a_runtime_goes_only_to_workers_that_advertise_it() {
        let mut core = PlacementCore::new(6_000);
        let (netns, vm) = (WorkerId::new(), WorkerId::new());
        core.observe(offering("a-netns", netns, &["netns"]), 0);
        let microvm = PlacementRequest {
            runtime: RuntimeName::Microvm,
            ..SMALL
        };
        let error = core.place(microvm, 1).unwrap_err();
        assert!(
            matches!(
                error,
                PlacementError::NoRuntime {
                    runtime: RuntimeName::Microvm,
                    development_only: false,
                    ..
                }
            ),
            "{error:?}"
        );
        core.observe(offering("b-vm", vm, &["netns", "microvm"]), 2);
        for _ in 0..3 {
            assert_eq!(core.place(microvm, 3).unwrap(), vm);
        }
        // The microVM worker is full: room elsewhere does not count for a microVM.
        assert!(matches!(
            core.place(microvm, 3),
            Err(PlacementError::NoCapacity { live: 1, .. })
        ));
        assert_eq!(core.place(SMALL, 3).unwrap(), netns);
    }

    #[test]
    fn heartbeats_without_runtimes_advertise_their_isolation() {
        let old = heartbeat("old", WorkerId::new(), 0, "development");
        assert_eq!(old.advertised_runtimes(), vec!["dev"]);
        assert!(!old.serves(RuntimeName::Netns, false));
        assert!(old.serves(RuntimeName::Netns, true));
        assert!(!old.serves(RuntimeName::Microvm, true));
        let json = serde_json::to_value(&old).unwrap();
        let mut without = json.as_object().unwrap().clone();
        without.remove("runtimes");
        let parsed: WorkerHeartbeat = serde_json::from_value(without.into()).unwrap();
        assert_eq!(parsed, old);
    }
}
