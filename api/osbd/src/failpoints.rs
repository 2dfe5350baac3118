//! Crash failpoints, for the crash tests only. With the `failpoints` cargo feature (which only
//! this crate's own test build turns on), `OPENSANDBOX_FAILPOINT=crash_after:<create step>`
//! makes `osbd control` abort right after that step's action ran, before it is logged: a kill -9
//! at the worst moment. Without the feature this module reads no environment at all, so a
//! release binary can never be made to crash on purpose by whoever sets its environment
//! (`scripts/check-failpoints-off.sh` proves the plain binary holds no failpoint code).

use std::io::Write;

/// The environment variable that arms a failpoint in a test build.
#[cfg(feature = "failpoints")]
pub const FAILPOINT_ENV: &str = "OPENSANDBOX_FAILPOINT";

/// The create step after which this process must abort, when a test build was armed.
#[cfg(feature = "failpoints")]
pub(crate) fn crash_after(err: &mut dyn Write) -> std::io::Result<Option<String>> {
    let step = std::env::var(FAILPOINT_ENV)
        .ok()
        .and_then(|value| value.strip_prefix("crash_after:").map(str::to_owned));
    if let Some(step) = &step {
        writeln!(
            err,
            "warning: failpoint armed: this process aborts after step {step}"
        )?;
    }
    Ok(step)
}

/// A build without the `failpoints` feature never arms one, whatever the environment says.
#[cfg(not(feature = "failpoints"))]
pub(crate) fn crash_after(_err: &mut dyn Write) -> std::io::Result<Option<String>> {
    Ok(None)
}
