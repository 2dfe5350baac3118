//! How long fan-out keeps trying to reach a sandbox, pure: delivery goes in rounds — every
//! sandbox still waiting gets one attempt per round, and the rounds are spaced by a bounded
//! exponential backoff. Between rounds the fan-out re-reads which sandboxes are still live, so
//! one that was destroyed meanwhile is dropped (and reported as gone) instead of retried.
//! After the last round, the sandboxes that never acknowledged are reported unreachable. This
//! module holds no handle and never sees a value.

use std::time::Duration;

/// The retry bounds of one fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Rounds in all (the first one included); at least 1.
    pub rounds: u32,
    /// Wait before the second round; doubled each round after.
    pub first_backoff: Duration,
    /// No wait is longer than this.
    pub max_backoff: Duration,
}

impl Default for DeliveryPolicy {
    /// Six rounds over about 1.5 s: long enough for a worker's link to be re-dialled or a
    /// busy actor to answer, short enough for the caller's request to wait on it.
    fn default() -> Self {
        Self {
            rounds: 6,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(800),
        }
    }
}

impl DeliveryPolicy {
    /// The wait before round `round` (0-based), or `None` when there is no such round.
    pub fn backoff_before(&self, round: u32) -> Option<Duration> {
        if round >= self.rounds.max(1) {
            return None;
        }
        if round == 0 {
            return Some(Duration::ZERO);
        }
        let doublings = (round - 1).min(16);
        let wait = self.first_backoff.saturating_mul(1 << doublings);
        Some(wait.min(self.max_backoff))
    }

    /// The longest a fan-out can wait in all (for callers' timeouts).
    pub fn total_backoff(&self) -> Duration {
        (0..self.rounds.max(1))
            .filter_map(|round| self.backoff_before(round))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_second_round_and_is_bounded() {
        let policy = DeliveryPolicy {
            rounds: 6,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(300),
        };
        let waits: Vec<u64> = (0..7)
            .filter_map(|round| policy.backoff_before(round))
            .map(|wait| wait.as_millis() as u64)
            .collect();
        assert_eq!(waits, vec![0, 50, 100, 200, 300, 300]);
        assert_eq!(policy.total_backoff(), Duration::from_millis(950));
    }

    #[test]
    fn there_is_always_a_first_round() {
        let policy = DeliveryPolicy {
            rounds: 0,
            ..DeliveryPolicy::default()
        };
        assert_eq!(policy.backoff_before(0), Some(Duration::ZERO));
        assert_eq!(policy.backoff_before(1), None);
    }

    #[test]
    fn the_default_gives_up_within_two_seconds() {
        assert!(DeliveryPolicy::default().total_backoff() <= Duration::from_secs(2));
    }
}
