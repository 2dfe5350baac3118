//! How many actix HTTP workers a process runs (`OPENSANDBOX_HTTP_WORKERS`). A control-plane
//! node shares its cores with its sagas, placement, the outbox relay, the database client — and
//! under `osbd up` with the worker's runtime and proxy — so by default it gives HTTP half of
//! them, at least one; a standalone `osbd gateway` does nothing else and defaults to all of
//! them. Measured on 2 cores (docs/benchmarks.md, "HTTP workers"): with 64 connections one
//! worker instead of two halved the p99 of cached listings at the same throughput. A malformed
//! setting stops the process at start; it never falls back silently.

/// The setting's name.
pub(crate) const HTTP_WORKERS_ENV: &str = "OPENSANDBOX_HTTP_WORKERS";
/// The largest accepted value.
const MAX_HTTP_WORKERS: usize = 64;

/// Which share of the machine's cores a role gives HTTP by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Share {
    /// Half the cores, at least one (control-plane nodes, `osbd up`).
    Half,
    /// Every core (a standalone gateway).
    All,
}

/// The worker count from the setting `setting`, or the role's default on `cores` cores.
pub(crate) fn http_workers(
    setting: Option<&str>,
    share: Share,
    cores: usize,
) -> Result<usize, String> {
    match setting.map(str::trim).filter(|text| !text.is_empty()) {
        None => Ok(match share {
            Share::Half => (cores / 2).max(1),
            Share::All => cores.max(1),
        }
        .min(MAX_HTTP_WORKERS)),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|count| (1..=MAX_HTTP_WORKERS).contains(count))
            .ok_or_else(|| {
                format!(
                    "{HTTP_WORKERS_ENV} must be a whole number from 1 to {MAX_HTTP_WORKERS}, got {:?}; unset it for the default",
                    text.chars().take(20).collect::<String>()
                )
            }),
    }
}

/// [`http_workers`] from the environment and this machine's core count.
pub(crate) fn from_env(share: Share) -> Result<usize, String> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    http_workers(
        std::env::var(HTTP_WORKERS_ENV).ok().as_deref(),
        share,
        cores,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_a_share_of_the_cores_and_a_setting_is_checked() {
        assert_eq!(http_workers(None, Share::Half, 2), Ok(1));
        assert_eq!(http_workers(None, Share::Half, 1), Ok(1));
        assert_eq!(http_workers(None, Share::Half, 16), Ok(8));
        assert_eq!(http_workers(None, Share::All, 2), Ok(2));
        assert_eq!(http_workers(Some(" "), Share::All, 4), Ok(4));
        assert_eq!(http_workers(Some("3"), Share::Half, 2), Ok(3));
        for bad in ["0", "65", "two", "-1"] {
            let error = http_workers(Some(bad), Share::Half, 2).expect_err(bad);
            assert!(
                error.contains(HTTP_WORKERS_ENV) && error.contains("1 to 64"),
                "{error}"
            );
        }
    }
}
