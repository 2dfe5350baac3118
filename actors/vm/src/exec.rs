//! Running one prepared command with a timeout, streaming its output as chunks, or collecting
//! it into bounded buffers. Shared by every runtime: the runtime builds the `Command` (entering
//! the sandbox, environment, uid), this module only supervises the process. The command runs in
//! its own process group so a timeout kills it and whatever it spawned in that group. This module
//! must never build a command line or an environment itself.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::error::RuntimeError;
use crate::output::BoundedBuffer;
use crate::runtime::{ExecChunk, ExecOutput, ExecStream, TIMEOUT_EXIT_CODE};
use crate::system::kill_process_group;

/// How long output may keep arriving after the command exited (background children that still
/// hold the pipes are not waited for beyond this).
pub const OUTPUT_GRACE: Duration = Duration::from_millis(200);
const CHUNK_BYTES: usize = 16 * 1024;

/// Starts `command` and streams its output; the stream ends with `ExecChunk::Exited`.
pub fn spawn_streaming(
    mut command: Command,
    timeout: Duration,
) -> Result<ExecStream, RuntimeError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| RuntimeError::io("starting the command", e))?;
    let pgid = child.id().and_then(|pid| i32::try_from(pid).ok());
    let (sender, chunks) = mpsc::channel(64);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_reader = stdout.map(|pipe| tokio::spawn(pump(pipe, sender.clone(), ExecChunk::Stdout)));
    let err_reader = stderr.map(|pipe| tokio::spawn(pump(pipe, sender.clone(), ExecChunk::Stderr)));
    tokio::spawn(async move {
        let mut timed_out = false;
        let status = tokio::select! {
            status = child.wait() => status.ok(),
            () = tokio::time::sleep(timeout) => {
                timed_out = true;
                None
            }
            () = sender.closed() => None,
        };
        if status.is_none() {
            if let Some(pgid) = pgid {
                kill_process_group(pgid);
            }
            let _ = child.kill().await;
        }
        for reader in [out_reader, err_reader].into_iter().flatten() {
            let abort = reader.abort_handle();
            if tokio::time::timeout(OUTPUT_GRACE, reader).await.is_err() {
                abort.abort();
            }
        }
        let exit_code = if timed_out {
            TIMEOUT_EXIT_CODE
        } else {
            status
                .map(|status| {
                    status
                        .code()
                        .or_else(|| status.signal().map(|signal| 128 + signal))
                        .unwrap_or(-1)
                })
                .unwrap_or(-1)
        };
        let _ = sender
            .send(ExecChunk::Exited {
                exit_code,
                timed_out,
            })
            .await;
    });
    Ok(ExecStream { chunks })
}

async fn pump<R: AsyncRead + Unpin>(
    mut pipe: R,
    sender: mpsc::Sender<ExecChunk>,
    wrap: fn(Vec<u8>) -> ExecChunk,
) {
    let mut buffer = vec![0u8; CHUNK_BYTES];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                if sender.send(wrap(buffer[..read].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Runs `command` to completion, keeping at most `max_output_bytes` of each stream.
pub async fn run_bounded(
    command: Command,
    timeout: Duration,
    max_output_bytes: usize,
) -> Result<ExecOutput, RuntimeError> {
    collect_bounded(spawn_streaming(command, timeout)?, max_output_bytes).await
}

/// Collects a streaming exec into bounded buffers (any runtime's stream).
pub async fn collect_bounded(
    mut stream: ExecStream,
    max_output_bytes: usize,
) -> Result<ExecOutput, RuntimeError> {
    let mut stdout = BoundedBuffer::new(max_output_bytes);
    let mut stderr = BoundedBuffer::new(max_output_bytes);
    let mut exit = (-1, false);
    while let Some(chunk) = stream.chunks.recv().await {
        match chunk {
            ExecChunk::Stdout(bytes) => stdout.push(&bytes),
            ExecChunk::Stderr(bytes) => stderr.push(&bytes),
            ExecChunk::Exited {
                exit_code,
                timed_out,
            } => {
                exit = (exit_code, timed_out);
                break;
            }
        }
    }
    let (stdout, stdout_truncated) = stdout.into_text();
    let (stderr, stderr_truncated) = stderr.into_text();
    Ok(ExecOutput {
        exit_code: exit.0,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        timed_out: exit.1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::TRUNCATION_MARKER;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("/bin/sh");
        command.args(["-c", script]);
        command
    }

    #[tokio::test]
    async fn captures_output_and_exit_code() {
        let output = run_bounded(
            shell("echo out; echo err >&2; exit 3"),
            Duration::from_secs(10),
            100,
        )
        .await
        .unwrap();
        assert_eq!(output.exit_code, 3);
        assert_eq!(output.stdout, "out\n");
        assert_eq!(output.stderr, "err\n");
        assert!(!output.timed_out);
    }

    #[tokio::test]
    async fn output_beyond_the_bound_is_marked() {
        let output = run_bounded(shell("yes | head -c 5000"), Duration::from_secs(10), 100)
            .await
            .unwrap();
        assert!(output.stdout_truncated);
        assert!(output.stdout.contains(TRUNCATION_MARKER));
        assert!(output.stdout.contains("4900 more bytes"));
    }

    #[tokio::test]
    async fn timeout_kills_the_process_group() {
        let output = run_bounded(
            shell("sleep 30 & sleep 30; echo never"),
            Duration::from_millis(200),
            100,
        )
        .await
        .unwrap();
        assert!(output.timed_out);
        assert_eq!(output.exit_code, TIMEOUT_EXIT_CODE);
        assert!(!output.stdout.contains("never"));
    }

    #[tokio::test]
    async fn streaming_delivers_chunks_then_exit() {
        let mut stream =
            spawn_streaming(shell("echo a; echo b >&2"), Duration::from_secs(10)).unwrap();
        let mut seen = Vec::new();
        while let Some(chunk) = stream.chunks.recv().await {
            seen.push(chunk);
        }
        assert!(seen.contains(&ExecChunk::Stdout(b"a\n".to_vec())));
        assert!(seen.contains(&ExecChunk::Stderr(b"b\n".to_vec())));
        assert_eq!(
            seen.last(),
            Some(&ExecChunk::Exited {
                exit_code: 0,
                timed_out: false
            })
        );
    }
}
