//! Keeps a sandbox from flooding the bus with `egress_blocked` events, in fixed memory and O(1)
//! per query, so no query pattern can stall the resolver:
//! * the same (sandbox, name) pair is reported at most once per window, remembered in a fixed
//!   table of slots keyed by a per-process random hash (a sandbox cannot aim collisions at a
//!   neighbour; a collision only costs an extra report, never a lost first one);
//! * each sandbox has its own report budget (a token bucket that lives in its resolver policy,
//!   so it exists exactly as long as the sandbox), so a sandbox asking for endless fresh names
//!   spends only its own budget and can never silence another sandbox's reports.
//!
//! Pure bookkeeping with the clock passed in; it never allocates per query.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use osb_proto::SandboxId;

/// Default window between two reports of the same blocked name by the same sandbox.
pub const REPORT_WINDOW: Duration = Duration::from_secs(10);
/// Slots of the dedupe table (fixed memory: 16 bytes + an `Instant` each).
const SLOTS: usize = 4096;
/// Reports a sandbox may burst.
pub const REPORT_BURST: u32 = 20;
/// Reports a sandbox earns back per second.
pub const REPORTS_PER_SECOND: u32 = 5;

#[derive(Debug, Clone, Copy)]
struct Slot {
    fingerprint: u64,
    at: Instant,
}

/// Remembers recently reported (sandbox, name) pairs in a fixed table.
#[derive(Debug)]
pub struct ReportLimiter {
    window: Duration,
    hasher: RandomState,
    slots: Box<[Option<Slot>]>,
}

impl ReportLimiter {
    /// A limiter with the given window.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            hasher: RandomState::new(),
            slots: vec![None; SLOTS].into_boxed_slice(),
        }
    }

    /// Whether `name` asked by `sandbox` at `now` is worth reporting: not reported within the
    /// window, and the sandbox's `budget` has a report left. Remembers it when so.
    pub fn should_report(
        &mut self,
        sandbox: SandboxId,
        name: &str,
        budget: &ReportBudget,
        now: Instant,
    ) -> bool {
        let fingerprint = self.hasher.hash_one((sandbox, name));
        // Truncation is intended: the slot index is the fingerprint modulo the table size.
        let index = (fingerprint % SLOTS as u64) as usize;
        if let Some(slot) = self.slots[index] {
            if slot.fingerprint == fingerprint
                && now.saturating_duration_since(slot.at) < self.window
            {
                return false;
            }
        }
        if !budget.take(now) {
            return false;
        }
        self.slots[index] = Some(Slot {
            fingerprint,
            at: now,
        });
        true
    }
}

/// One sandbox's report budget: a token bucket refilled at [`REPORTS_PER_SECOND`] up to
/// [`REPORT_BURST`]. Reports it refuses are counted so the operator can see the flood.
#[derive(Debug)]
pub struct ReportBudget {
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Option<Instant>,
    refused: u64,
}

impl Default for ReportBudget {
    fn default() -> Self {
        Self {
            state: Mutex::new(Bucket {
                tokens: f64::from(REPORT_BURST),
                refilled_at: None,
                refused: 0,
            }),
        }
    }
}

impl ReportBudget {
    /// Takes one report from the budget at `now`; false when it is spent.
    pub fn take(&self, now: Instant) -> bool {
        let Ok(mut bucket) = self.state.lock() else {
            return false;
        };
        if let Some(last) = bucket.refilled_at {
            let earned =
                now.saturating_duration_since(last).as_secs_f64() * f64::from(REPORTS_PER_SECOND);
            bucket.tokens = (bucket.tokens + earned).min(f64::from(REPORT_BURST));
        }
        bucket.refilled_at = Some(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            bucket.refused += 1;
            false
        }
    }

    /// Reports refused because the budget was spent.
    pub fn refused(&self) -> u64 {
        self.state.lock().map(|bucket| bucket.refused).unwrap_or(0)
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
        let (budget_a, budget_b) = (ReportBudget::default(), ReportBudget::default());
        assert!(limiter.should_report(a, "evil.example", &budget_a, start));
        assert!(!limiter.should_report(
            a,
            "evil.example",
            &budget_a,
            start + Duration::from_secs(9)
        ));
        assert!(limiter.should_report(a, "other.example", &budget_a, start));
        assert!(limiter.should_report(b, "evil.example", &budget_b, start));
        assert!(limiter.should_report(
            a,
            "evil.example",
            &budget_a,
            start + Duration::from_secs(10)
        ));
    }

    #[test]
    fn a_flood_of_fresh_names_spends_only_the_flooders_budget() {
        let mut limiter = ReportLimiter::new(REPORT_WINDOW);
        let start = Instant::now();
        let (flooder, neighbour) = (SandboxId::new(), SandboxId::new());
        let (flood_budget, neighbour_budget) = (ReportBudget::default(), ReportBudget::default());
        let reported = (0..100_000)
            .filter(|index| {
                limiter.should_report(flooder, &format!("n{index}.evil"), &flood_budget, start)
            })
            .count();
        assert_eq!(reported, REPORT_BURST as usize);
        assert_eq!(flood_budget.refused(), 100_000 - u64::from(REPORT_BURST));
        // The neighbour's first blocked name is still reported, at the same instant.
        assert!(limiter.should_report(neighbour, "first.evil", &neighbour_budget, start));
        // The flooder earns reports back over time, at the configured rate.
        let later = start + Duration::from_secs(2);
        let earned = (0..100)
            .filter(|index| {
                limiter.should_report(flooder, &format!("m{index}"), &flood_budget, later)
            })
            .count();
        assert_eq!(earned, 2 * REPORTS_PER_SECOND as usize);
    }

    #[test]
    fn memory_is_fixed_whatever_the_names() {
        let mut limiter = ReportLimiter::new(REPORT_WINDOW);
        let budget = ReportBudget::default();
        let now = Instant::now();
        for index in 0..50_000 {
            limiter.should_report(SandboxId::new(), &format!("{index}.x"), &budget, now);
        }
        assert_eq!(limiter.slots.len(), SLOTS);
    }
}
