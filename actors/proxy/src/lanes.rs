//! Data-plane lanes: one OS thread per lane, each with its own single-threaded tokio runtime.
//! An accepted connection is handed to one lane (round robin) and everything it does — TLS,
//! both HTTP legs, the upstream connection tasks it spawns — runs on that thread. Keep-alive
//! requests then never cross threads (profiling showed cross-thread wakeups between the
//! downstream connection and hyper's upstream dispatch task costing more CPU than the proxy's
//! own work). Pool keys carry the lane, so a pooled upstream connection is only reused by
//! connections of its own lane.
//!
//! It must never drop a connection silently: if a lane is gone, the connection is served on
//! the caller's runtime instead.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// A connection's work, ready to run on a lane.
pub(crate) type LaneJob = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

thread_local! {
    static CURRENT_LANE: Cell<usize> = const { Cell::new(NO_LANE) };
}

/// The lane id of threads that are not lanes (the caller's runtime).
pub(crate) const NO_LANE: usize = usize::MAX;

/// The lane this code runs on.
pub(crate) fn current_lane() -> usize {
    CURRENT_LANE.with(Cell::get)
}

/// The lanes of one proxy.
#[derive(Debug)]
pub(crate) struct Lanes {
    senders: Vec<mpsc::UnboundedSender<LaneJob>>,
    next: AtomicUsize,
}

impl Lanes {
    /// Starts `count` lanes (0: none, everything runs on the caller's runtime).
    pub(crate) fn start(count: usize) -> std::io::Result<Self> {
        let mut senders = Vec::with_capacity(count);
        for lane in 0..count {
            let (sender, mut jobs) = mpsc::unbounded_channel::<LaneJob>();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name(format!("osb-proxy-lane-{lane}"))
                .spawn(move || {
                    CURRENT_LANE.with(|current| current.set(lane));
                    runtime.block_on(async move {
                        while let Some(job) = jobs.recv().await {
                            // Called inside the lane's runtime: the job registers its socket
                            // with this thread's reactor, and its tasks stay here.
                            tokio::spawn(job());
                        }
                    });
                })?;
            senders.push(sender);
        }
        Ok(Self {
            senders,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `job` on the next lane (or hands it back when there is none).
    pub(crate) fn dispatch(&self, job: LaneJob) -> Result<(), LaneJob> {
        if self.senders.is_empty() {
            return Err(job);
        }
        let lane = self.next.fetch_add(1, Ordering::Relaxed) % self.senders.len();
        self.senders[lane].send(job).map_err(|returned| returned.0)
    }
}
