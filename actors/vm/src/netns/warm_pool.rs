//! The worker's warm pool (ADR 0208): up to `NetnsConfig::warm_pool` pooled sandboxes
//! ([`Pooled`]) kept ready, a take that hands each to exactly one create (a pop under a lock),
//! and one background task that builds replacements one at a time once claims have paused for
//! a moment (a build must not compete with the claim that asked for it), backs off after a
//! failure and stops for good when the pool is drained or the runtime dropped. Pooled rules are
//! made for the proxy ports the worker gave or the last claim named.
//!
//! This module must never build during or after a drain, never hand one pooled sandbox to two
//! creates, and never put a sandbox back once a create took it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::netns::warm::Pooled;
use crate::netns::Inner;
use crate::spec::{BootLayer, ProxyEndpoints, RuntimeKind, SandboxSpec, HOST_SYSTEM_TEMPLATE};

/// First wait after a failed build; doubled per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between failed builds.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long after the last take a build waits: the claimed sandbox's first commands run on
/// cores the build would otherwise share.
const QUIET_AFTER_TAKE: Duration = Duration::from_millis(100);

/// Whether a create of `spec` can use a pooled sandbox: the host-system template, a fresh
/// layer, the netns runtime and the worker's default disk. Limits, envs, tokens, allowlist,
/// proxy ports and CA are applied by the claim; anything else takes the cold path.
pub(crate) fn fits(spec: &SandboxSpec, default_disk_mb: u32) -> bool {
    spec.runtime == RuntimeKind::Netns
        && spec.template == HOST_SYSTEM_TEMPLATE
        && spec.boot_from == BootLayer::Fresh
        && spec.disk_mb_within(default_disk_mb).ok() == Some(default_disk_mb)
}

/// State shared with the refill task.
struct Shared {
    ready: Mutex<VecDeque<Pooled>>,
    closed: AtomicBool,
    wake: Notify,
    /// The proxy ports pooled rules are made for (None: closed rules).
    proxy: Mutex<Option<ProxyEndpoints>>,
    last_take: Mutex<Option<Instant>>,
}

impl Shared {
    fn len(&self) -> usize {
        self.ready.lock().map(|ready| ready.len()).unwrap_or(0)
    }

    fn pop(&self) -> Option<Pooled> {
        self.ready
            .lock()
            .ok()
            .and_then(|mut ready| ready.pop_front())
    }
}

/// The pool of one runtime.
pub(crate) struct WarmPool {
    target: usize,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
    claims: AtomicU64,
}

impl WarmPool {
    /// An empty pool that will hold `target` sandboxes once [`WarmPool::start`]ed.
    pub(crate) fn new(target: usize, proxy: Option<ProxyEndpoints>) -> Self {
        Self {
            target,
            shared: Arc::new(Shared {
                ready: Mutex::new(VecDeque::new()),
                closed: AtomicBool::new(false),
                wake: Notify::new(),
                proxy: Mutex::new(proxy),
                last_take: Mutex::new(None),
            }),
            task: Mutex::new(None),
            claims: AtomicU64::new(0),
        }
    }

    /// Starts the refill task (nothing when the target is 0). It holds the runtime weakly: a
    /// dropped runtime ends it.
    pub(crate) fn start(&self, inner: Weak<Inner>) {
        if self.target == 0 {
            return;
        }
        let task = tokio::spawn(refill(Arc::clone(&self.shared), inner, self.target));
        if let Ok(mut slot) = self.task.lock() {
            *slot = Some(task);
        }
    }

    /// How many sandboxes the pool aims to hold.
    pub(crate) fn target(&self) -> usize {
        self.target
    }

    /// Pooled sandboxes ready now.
    pub(crate) fn ready(&self) -> usize {
        self.shared.len()
    }

    /// Counts a successful claim; later pooled rules are made for its proxy ports.
    pub(crate) fn record_claim(&self, proxy: ProxyEndpoints) {
        self.claims.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut ports) = self.shared.proxy.lock() {
            *ports = Some(proxy);
        }
    }

    /// Creates served from the pool since the runtime started.
    pub(crate) fn claims(&self) -> u64 {
        self.claims.load(Ordering::Relaxed)
    }

    /// Hands one pooled sandbox to the caller (never to another) and asks for a replacement.
    pub(crate) fn take(&self) -> Option<Pooled> {
        let taken = self.shared.pop();
        if taken.is_some() {
            if let Ok(mut last) = self.shared.last_take.lock() {
                *last = Some(Instant::now());
            }
            self.shared.wake.notify_one();
        }
        taken
    }

    /// Stops refilling for good (waiting for a build in flight, which is torn down) and
    /// removes every pooled sandbox.
    pub(crate) async fn drain(&self, inner: &Inner) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        let task = self.task.lock().ok().and_then(|mut slot| slot.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        while let Some(pooled) = self.shared.pop() {
            if let Err(error) = pooled.teardown(inner).await {
                tracing::warn!(error = %error, "removing a pooled sandbox failed; the reaper will finish it");
            }
        }
    }
}

impl Drop for WarmPool {
    fn drop(&mut self) {
        // The runtime is gone without a drain (a crash, or a test dropping it): stop the task;
        // what it built is left to the reaper of the next start.
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }
}

/// Keeps the pool at `target`: one build at a time, backoff after failures, none once closed.
async fn refill(shared: Arc<Shared>, inner: Weak<Inner>, target: usize) {
    let mut backoff = MIN_BACKOFF;
    loop {
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        if shared.len() >= target {
            shared.wake.notified().await;
            continue;
        }
        let since_take = shared
            .last_take
            .lock()
            .ok()
            .and_then(|last| last.map(|at| at.elapsed()));
        if let Some(wait) = since_take.and_then(|since| QUIET_AFTER_TAKE.checked_sub(since)) {
            tokio::time::sleep(wait).await;
            continue;
        }
        let Some(runtime) = inner.upgrade() else {
            return;
        };
        let proxy = shared.proxy.lock().ok().and_then(|ports| *ports);
        let built = Pooled::build(&runtime, proxy)
            .instrument(tracing::debug_span!("warm_pool_build"))
            .await;
        match built {
            Ok(pooled) => {
                backoff = MIN_BACKOFF;
                if shared.closed.load(Ordering::SeqCst) {
                    let _ = pooled.teardown(&runtime).await;
                    return;
                }
                if let Ok(mut ready) = shared.ready.lock() {
                    ready.push_back(pooled);
                }
            }
            Err(error) => {
                drop(runtime);
                tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "building a pooled sandbox failed");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shared.wake.notified() => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use osb_proto::SandboxId;

    use super::*;
    use crate::spec::ProxyEndpoints;

    fn spec() -> SandboxSpec {
        SandboxSpec::new(
            SandboxId::new(),
            ProxyEndpoints {
                transparent_port: 1,
                explicit_port: 2,
            },
            "ca",
        )
    }

    #[test]
    fn only_the_common_shape_fits_the_pool() {
        let mut common = spec();
        common.cpu_count = 4;
        common.memory_mb = 2048;
        common.egress_allowlist = vec!["api.example.com".into()];
        assert!(fits(&common, 256), "limits and allowlist are personalised");
        let mut same_disk = spec();
        same_disk.disk_mb = Some(256);
        assert!(fits(&same_disk, 256));

        let mut smaller_disk = spec();
        smaller_disk.disk_mb = Some(128);
        let mut template = spec();
        template.template = "python".into();
        let mut fork = spec();
        fork.boot_from = BootLayer::Snapshot("golden".into());
        let mut microvm = spec();
        microvm.runtime = RuntimeKind::Microvm;
        for other in [smaller_disk, template, fork, microvm] {
            assert!(!fits(&other, 256), "{other:?}");
        }
    }

    #[test]
    fn a_take_hands_out_nothing_from_an_empty_pool() {
        let pool = WarmPool::new(4, None);
        assert_eq!(pool.ready(), 0);
        assert!(pool.take().is_none());
        assert_eq!(pool.target(), 4);
    }
}
