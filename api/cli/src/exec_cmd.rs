//! `oc exec ID [--env K=V]… [--cwd D] [--timeout-sec N] -- CMD…`: runs a command in a sandbox,
//! writes its stdout to stdout and its stderr to stderr byte for byte **as they happen** (the
//! streaming exec route), and exits with its exit code (124 when it timed out, 128+N when killed
//! by signal N, as the worker reports). With `--json` it waits for the whole result and prints
//! the API's answer instead, still exiting with the command's code. Notes of
//! its own (truncation, time-out) go to stderr after the command's output, prefixed `oc:`, and
//! must never be mixed into the command's stdout.

use std::time::Duration;

use serde_json::{json, Value};

use super::cli::ExecArgs;
use super::client::CallOptions;
use super::envs::env_object;
use super::failure::{expect, Failure, Hints, EXIT_FAILURE};
use super::run::{encode, Call, Ctx, Done};

/// The wait when `--timeout-sec` is not given (the worker applies its own default).
const DEFAULT_EXEC_WAIT: Duration = Duration::from_secs(300);
/// How much longer than the command's own time-out the HTTP call may take.
const EXEC_MARGIN: Duration = Duration::from_secs(30);

pub(crate) fn run(args: ExecArgs, ctx: &mut Ctx<'_>) -> Result<Done, Failure> {
    let envs = env_object(&args.envs)?;
    let mut body = json!({ "cmd": args.cmd });
    if !envs.is_empty() {
        body["env"] = Value::Object(envs);
    }
    if let Some(cwd) = &args.cwd {
        body["cwd"] = json!(cwd);
    }
    if let Some(timeout) = args.timeout_sec {
        body["timeoutSec"] = json!(timeout);
    }
    let wait = args
        .timeout_sec
        .map(|seconds| Duration::from_secs(u64::from(seconds)))
        .unwrap_or(DEFAULT_EXEC_WAIT)
        + EXEC_MARGIN;
    if !ctx.json {
        return stream(&args, &body, wait, ctx);
    }
    let path = format!("/sandboxes/{}/exec", encode(&args.sandbox));
    let call = Call::new("POST", path, &[200])
        .body(body)
        .listed_by("oc sandbox list");
    let call = call.long(CallOptions::long(wait), String::new()).quiet();
    let result = ctx.send(call)?;
    let code = exit_code(&result);
    if ctx.json {
        let text = serde_json::to_string_pretty(&result).unwrap_or_default();
        writeln!(ctx.out, "{text}").map_err(output_failed)?;
        return Ok(Done::Exit(code));
    }
    let stdout = result["stdout"].as_str().unwrap_or_default();
    let stderr = result["stderr"].as_str().unwrap_or_default();
    ctx.out
        .write_all(stdout.as_bytes())
        .and_then(|()| ctx.out.flush())
        .map_err(output_failed)?;
    let _ = ctx.err.write_all(stderr.as_bytes());
    for (flag, stream) in [("stdoutTruncated", "stdout"), ("stderrTruncated", "stderr")] {
        if result[flag].as_bool() == Some(true) {
            let _ = writeln!(
                ctx.err,
                "oc: the command's {stream} was truncated by the worker"
            );
        }
    }
    if result["timedOut"].as_bool() == Some(true) {
        timed_out_note(&args, ctx);
    }
    let _ = ctx.err.flush();
    Ok(Done::Exit(code))
}

/// Streams the command's output: each chunk is written the moment it arrives.
fn stream(
    args: &ExecArgs,
    body: &Value,
    wait: Duration,
    ctx: &mut Ctx<'_>,
) -> Result<Done, Failure> {
    use base64::Engine;
    use std::io::BufRead;

    ctx.require_key()?;
    let path = format!("/sandboxes/{}/exec/stream", encode(&args.sandbox));
    let reader = match ctx
        .api
        .stream_post(&path, body, wait)
        .map_err(|error| ctx.unreachable(error))?
    {
        Ok(reader) => reader,
        Err(refusal) => {
            let hints = Hints {
                list_with: "oc sandbox list",
                key_source: &ctx.connection.key_source,
            };
            return Err(expect(refusal, &[200], hints)
                .err()
                .unwrap_or_else(|| Failure::new("the exec was refused", EXIT_FAILURE)));
        }
    };
    let decode = |text: &str| base64::engine::general_purpose::STANDARD.decode(text).ok();
    for line in std::io::BufReader::new(reader).lines() {
        let line = line.map_err(|error| {
            Failure::new(
                format!("the command's output stream broke off: {error}"),
                EXIT_FAILURE,
            )
        })?;
        let Ok(chunk) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(bytes) = chunk["stdout"].as_str().and_then(decode) {
            ctx.out
                .write_all(&bytes)
                .and_then(|()| ctx.out.flush())
                .map_err(output_failed)?;
        } else if let Some(bytes) = chunk["stderr"].as_str().and_then(decode) {
            let _ = ctx.err.write_all(&bytes);
            let _ = ctx.err.flush();
        } else if let Some(error) = chunk["error"].as_str() {
            return Err(Failure::new(error.to_owned(), EXIT_FAILURE));
        } else if chunk.get("exitCode").is_some() {
            if chunk["timedOut"].as_bool() == Some(true) {
                timed_out_note(args, ctx);
            }
            return Ok(Done::Exit(exit_code(&chunk)));
        }
    }
    Err(Failure::new(
        "the command's output stream ended without an exit code; the worker may have gone away",
        EXIT_FAILURE,
    ))
}

fn timed_out_note(args: &ExecArgs, ctx: &mut Ctx<'_>) {
    let limit = args
        .timeout_sec
        .map(|seconds| format!("after {seconds} s"))
        .unwrap_or_else(|| "at the sandbox's default limit".to_owned());
    let _ = writeln!(
        ctx.err,
        "oc: the command timed out {limit} and was killed; give more with --timeout-sec"
    );
}

/// The command's exit code as a process exit code (0–255; anything else becomes 1).
fn exit_code(result: &Value) -> i32 {
    result["exitCode"]
        .as_i64()
        .filter(|code| (0..=255).contains(code))
        .and_then(|code| i32::try_from(code).ok())
        .unwrap_or(EXIT_FAILURE)
}

fn output_failed(error: std::io::Error) -> Failure {
    Failure::new(
        format!("cannot write the command's output: {error}"),
        EXIT_FAILURE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_stay_in_the_process_range() {
        assert_eq!(exit_code(&json!({"exitCode": 7})), 7);
        assert_eq!(exit_code(&json!({"exitCode": 0})), 0);
        assert_eq!(exit_code(&json!({"exitCode": 137})), 137);
        assert_eq!(exit_code(&json!({"exitCode": -1})), 1);
        assert_eq!(exit_code(&json!({"exitCode": 300})), 1);
        assert_eq!(exit_code(&json!({})), 1);
    }
}
