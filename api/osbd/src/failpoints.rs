//! Crash failpoints, for the crash tests only. With the `failpoints` cargo feature (which only
//! this crate's own test build turns on), `OPENSANDBOX_FAILPOINT` arms one of:
//!
//! * `crash_after:<create step>`: `osbd control` aborts right after that step's action ran,
//!   before it is logged — a kill -9 of the control plane at the worst moment;
//! * `worker_abort_after:<step>[:do|:undo]`: `osbd worker` aborts once the command of that saga
//!   step (its `do` unless `:undo` is given) ran and its outcome record is on disk, before the
//!   outcome is published or the command acknowledged — a kill -9 of the worker at its worst
//!   moment (ADR 0021). A step, not a verb: `destroy_sandbox` names the destroy saga's step,
//!   while the same verb undoing `boot_sandbox` is `boot_sandbox:undo`.
//!
//! Each role reads only its own kind and ignores the other. Without the feature this module
//! reads no environment at all, so a release binary can never be made to crash on purpose by
//! whoever sets its environment (`scripts/check-failpoints-off.sh` proves the plain binary holds
//! no failpoint code).

use std::io::Write;

use crate::context::CommandError;

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

/// The worker command after whose record this process must abort, when a test build was armed.
#[cfg(feature = "failpoints")]
pub(crate) fn worker_abort_after(
    err: &mut dyn Write,
) -> Result<Option<osb_worker::AbortAfterRecord>, CommandError> {
    let Some(value) = std::env::var(FAILPOINT_ENV)
        .ok()
        .and_then(|value| value.strip_prefix("worker_abort_after:").map(str::to_owned))
    else {
        return Ok(None);
    };
    let armed = osb_worker::AbortAfterRecord::parse(&value)
        .map_err(|refusal| CommandError::Usage(format!("{FAILPOINT_ENV}: {refusal}")))?;
    writeln!(
        err,
        "warning: failpoint armed: this worker aborts after recording the command of {value}, before publishing it"
    )?;
    Ok(Some(armed))
}

/// A build without the `failpoints` feature never arms one, whatever the environment says.
#[cfg(not(feature = "failpoints"))]
pub(crate) fn worker_abort_after(
    _err: &mut dyn Write,
) -> Result<Option<osb_worker::AbortAfterRecord>, CommandError> {
    Ok(None)
}
