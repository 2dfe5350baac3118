//! Percentiles and one-line summaries of latency samples, printed in milliseconds.

use std::time::Duration;

/// A named set of latency samples.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    values: Vec<Duration>,
}

impl Samples {
    pub fn push(&mut self, value: Duration) {
        self.values.push(value);
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The sample at `fraction` (nearest rank on the sorted samples).
    pub fn percentile(&self, fraction: f64) -> Duration {
        let mut sorted = self.values.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
        sorted[index.min(sorted.len() - 1)]
    }

    pub fn p50(&self) -> Duration {
        self.percentile(0.50)
    }

    pub fn p99(&self) -> Duration {
        self.percentile(0.99)
    }

    pub fn mean(&self) -> Duration {
        if self.values.is_empty() {
            return Duration::ZERO;
        }
        self.values.iter().sum::<Duration>() / self.values.len() as u32
    }
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Prints `label  n  p50  p99  min  max  [ratio of p50 to baseline]`.
pub fn print_row(label: &str, samples: &Samples, baseline: Option<&Samples>) {
    let ratio = baseline
        .map(|base| format!("{:>7.2}x", ms(samples.p50()) / ms(base.p50()).max(1e-9)))
        .unwrap_or_else(|| "       -".to_owned());
    println!(
        "{label:<58} n={:<4} p50 {:>8.2} ms  p99 {:>8.2} ms  min {:>8.2}  max {:>8.2}  {ratio}",
        samples.len(),
        ms(samples.p50()),
        ms(samples.p99()),
        ms(samples.percentile(0.0)),
        ms(samples.percentile(1.0)),
    );
}

/// The load average, so a noisy run is recognisable in the output.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}
