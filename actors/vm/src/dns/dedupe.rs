//! Keeps a sandbox from flooding the bus with `egress_blocked` events by asking for the same
//! forbidden name in a loop: a (sandbox, name) pair is reported at most once per window. Pure
//! bookkeeping with the clock passed in; it must never drop the first report of a pair.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use osb_proto::SandboxId;

/// Default window between two reports of the same blocked name by the same sandbox.
pub const REPORT_WINDOW: Duration = Duration::from_secs(10);
const MAX_TRACKED: usize = 10_000;

/// Remembers when each (sandbox, name) was last reported.
#[derive(Debug)]
pub struct ReportLimiter {
    window: Duration,
    last: HashMap<(SandboxId, String), Instant>,
}

impl ReportLimiter {
    /// A limiter with the given window.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            last: HashMap::new(),
        }
    }

    /// Whether to report `name` for `sandbox` at `now` (and remember it if so).
    pub fn should_report(&mut self, sandbox: SandboxId, name: &str, now: Instant) -> bool {
        let key = (sandbox, name.to_owned());
        if let Some(previous) = self.last.get(&key) {
            if now.saturating_duration_since(*previous) < self.window {
                return false;
            }
        }
        if self.last.len() >= MAX_TRACKED {
            let window = self.window;
            self.last
                .retain(|_, at| now.saturating_duration_since(*at) < window);
        }
        self.last.insert(key, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_window_are_suppressed_per_sandbox_and_name() {
        let mut limiter = ReportLimiter::new(Duration::from_secs(10));
        let start = Instant::now();
        let (a, b) = (SandboxId::new(), SandboxId::new());
        assert!(limiter.should_report(a, "evil.example", start));
        assert!(!limiter.should_report(a, "evil.example", start + Duration::from_secs(9)));
        assert!(limiter.should_report(a, "other.example", start));
        assert!(limiter.should_report(b, "evil.example", start));
        assert!(limiter.should_report(a, "evil.example", start + Duration::from_secs(10)));
    }
}
