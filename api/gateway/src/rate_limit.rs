//! The REST rate limit per API key (ADR 0027): a token bucket per key id — `burst` requests at
//! once, refilled at `per_second` — checked after authentication, before any handler runs. An
//! empty bucket is 429 `rate_limited` with `Retry-After` (whole seconds until one token is
//! back). Pure: the caller passes the time, so tests drive it by hand.
//!
//! The operator sets it with `OPENSANDBOX_API_RATE_LIMIT` (`PER_SECOND[/BURST]`, or `off` for
//! a deployment that limits elsewhere, e.g. a load test); a malformed value stops the process
//! at start (`RateLimiter::from_setting`), never silently falls back.
//!
//! It must never hold a key (only key ids) and never grow without bound per request: one entry
//! per key that made a request, dropped after it has been full and idle for a minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests per second per key by default.
pub const DEFAULT_RATE_PER_SECOND: f64 = 50.0;
/// Requests a key may make at once by default.
pub const DEFAULT_RATE_BURST: f64 = 200.0;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The environment variable of the operator's setting.
pub const RATE_LIMIT_ENV: &str = "OPENSANDBOX_API_RATE_LIMIT";

/// Token buckets of every key that made a request.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    /// `false` when the operator turned the limit off.
    enabled: bool,
    buckets: Mutex<HashMap<uuid::Uuid, Bucket>>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new(DEFAULT_RATE_PER_SECOND, DEFAULT_RATE_BURST)
    }
}

impl RateLimiter {
    /// `per_second` refill, `burst` capacity (both at least a tiny positive amount).
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second: per_second.max(0.001),
            burst: burst.max(1.0),
            enabled: true,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// A limiter that admits everything (the operator's `off`).
    pub fn unlimited() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// The limiter an operator's setting asks for: unset is the default, `off` none,
    /// `PER_SECOND` with a burst of four seconds' worth, `PER_SECOND/BURST` both.
    pub fn from_setting(setting: Option<&str>) -> Result<Self, String> {
        let Some(text) = setting.map(str::trim).filter(|text| !text.is_empty()) else {
            return Ok(Self::default());
        };
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::unlimited());
        }
        let refuse = || {
            format!(
                "{RATE_LIMIT_ENV}={text:?} is not a rate: write PER_SECOND or PER_SECOND/BURST \
                 (positive numbers, e.g. 50/200), or off"
            )
        };
        let number = |part: &str| {
            part.trim()
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite() && *value > 0.0)
                .ok_or_else(refuse)
        };
        let (per_second, burst) = match text.split_once('/') {
            Some((rate, burst)) => (number(rate)?, number(burst)?),
            None => {
                let rate = number(text)?;
                (rate, (rate * 4.0).max(1.0))
            }
        };
        Ok(Self::new(per_second, burst))
    }

    /// Takes one token of `key`'s bucket at `now`, or says how long until one is back.
    pub fn admit(&self, key: uuid::Uuid, now: Instant) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned lock must not turn into unlimited access: refuse briefly.
            return Err(Duration::from_secs(1));
        };
        if buckets.len() > 1024 {
            let idle = Duration::from_secs(60);
            buckets.retain(|_, bucket| now.saturating_duration_since(bucket.at) < idle);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let missing = 1.0 - bucket.tokens;
        Err(Duration::from_secs_f64(missing / self.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_setting_is_parsed_or_refused() {
        let key = uuid::Uuid::new_v4();
        let now = Instant::now();
        let off = RateLimiter::from_setting(Some("off")).expect("off");
        assert!((0..10_000).all(|_| off.admit(key, now).is_ok()));
        let custom = RateLimiter::from_setting(Some(" 2/3 ")).expect("2/3");
        assert!((0..3).all(|_| custom.admit(key, now).is_ok()));
        assert!(custom.admit(key, now).is_err());
        let rate_only = RateLimiter::from_setting(Some("5")).expect("5");
        assert_eq!((rate_only.per_second, rate_only.burst), (5.0, 20.0));
        let unset = RateLimiter::from_setting(None).expect("default");
        assert_eq!(
            (unset.per_second, unset.burst),
            (DEFAULT_RATE_PER_SECOND, DEFAULT_RATE_BURST)
        );
        for bad in ["fast", "0", "-1/5", "5/", "5/x", "inf", "NaN"] {
            let error = RateLimiter::from_setting(Some(bad)).expect_err(bad);
            assert!(
                error.contains(RATE_LIMIT_ENV) && error.contains("off"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_burst_passes_then_the_refill_rate_rules() {
        let limiter = RateLimiter::new(2.0, 3.0);
        let (key, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.admit(key, start).is_ok());
        }
        let wait = limiter.admit(key, start).expect_err("empty");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(limiter.admit(other, start).is_ok(), "buckets are per key");
        assert!(limiter
            .admit(key, start + Duration::from_millis(500))
            .is_ok());
        assert!(limiter
            .admit(key, start + Duration::from_millis(500))
            .is_err());
        // Idle time refills up to the burst, never beyond.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.admit(key, later).is_ok());
        }
        assert!(limiter.admit(key, later).is_err());
    }
}
