//! Exec: a command run in a running sandbox, as a direct call to its worker (not a saga: it
//! changes nothing the control plane records). The answer is the control plane's own types
//! (`ExecOutput`, `ExecStream` of `ExecEvent`s), so callers never see the gRPC wire.
//!
//! It must never run a command in a sandbox of another org (the row is looked up by
//! `(org, id)` first) nor in one that is not running.

use std::collections::BTreeMap;

use osb_grpc::proto as wire;
use osb_grpc::proto::exec_chunk::Chunk;
use osb_proto::{OrgId, SandboxId, WorkerName};

use super::error::ControlError;
use super::sandboxes::SandboxService;

/// A command to run in a sandbox, as the API received it.
#[derive(Debug, Clone, Default)]
pub struct ExecCall {
    pub cmd: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<String>,
    pub timeout_sec: Option<u32>,
}

/// What a finished command left: its exit code, its output (each stream capped by the worker)
/// and whether the time limit ended it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub timed_out: bool,
}

impl From<wire::ExecResponse> for ExecOutput {
    fn from(response: wire::ExecResponse) -> Self {
        Self {
            exit_code: response.exit_code,
            stdout: response.stdout,
            stderr: response.stderr,
            stdout_truncated: response.stdout_truncated,
            stderr_truncated: response.stderr_truncated,
            timed_out: response.timed_out,
        }
    }
}

/// One piece of a streamed command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// Always the last event.
    Exit {
        exit_code: i32,
        timed_out: bool,
    },
    /// A message of a kind this control plane does not know (a newer worker).
    Unknown,
}

/// A command's output as the worker streams it.
#[derive(Debug)]
pub struct ExecStream {
    chunks: tonic::Streaming<wire::ExecChunk>,
}

impl ExecStream {
    /// The next event; `Ok(None)` when the stream ended. The error is a sentence for users.
    pub async fn next(&mut self) -> Result<Option<ExecEvent>, String> {
        match self.chunks.message().await {
            Ok(Some(message)) => Ok(Some(match message.chunk {
                Some(Chunk::Stdout(bytes)) => ExecEvent::Stdout(bytes),
                Some(Chunk::Stderr(bytes)) => ExecEvent::Stderr(bytes),
                Some(Chunk::Exit(exit)) => ExecEvent::Exit {
                    exit_code: exit.exit_code,
                    timed_out: exit.timed_out,
                },
                None => ExecEvent::Unknown,
            })),
            Ok(None) => Ok(None),
            Err(status) => Err(status.message().to_owned()),
        }
    }
}

impl SandboxService {
    /// Runs a command in a running sandbox of the org.
    pub async fn exec(
        &self,
        org: OrgId,
        id: SandboxId,
        call: ExecCall,
    ) -> Result<ExecOutput, ControlError> {
        let (worker, mut client, request) = self.exec_target(org, id, call).await?;
        client
            .exec(request)
            .await
            .map(|response| ExecOutput::from(response.into_inner()))
            .map_err(|status| self.exec_failed(id, &worker, status))
    }

    /// Runs a command and hands back its output as the worker streams it; the last chunk
    /// carries the exit code.
    pub async fn exec_stream(
        &self,
        org: OrgId,
        id: SandboxId,
        call: ExecCall,
    ) -> Result<ExecStream, ControlError> {
        let (worker, mut client, request) = self.exec_target(org, id, call).await?;
        client
            .exec_stream(request)
            .await
            .map(|response| ExecStream {
                chunks: response.into_inner(),
            })
            .map_err(|status| self.exec_failed(id, &worker, status))
    }

    async fn exec_target(
        &self,
        org: OrgId,
        id: SandboxId,
        call: ExecCall,
    ) -> Result<
        (
            WorkerName,
            osb_grpc::proto::worker_client::WorkerClient<tonic::transport::Channel>,
            wire::ExecRequest,
        ),
        ControlError,
    > {
        let row = self.require_running(org, id).await?;
        let worker = row
            .worker_id
            .ok_or_else(|| ControlError::Conflict(format!("sandbox {id} has no worker")))?;
        let client = self
            .plane()
            .links
            .client(&worker)
            .await
            .map_err(ControlError::Unavailable)?;
        let request = wire::ExecRequest {
            sandbox_id: id.to_string(),
            cmd: call.cmd,
            env: call.env.into_iter().collect(),
            cwd: call.cwd.unwrap_or_default(),
            timeout_sec: call.timeout_sec.unwrap_or(0),
            max_output_bytes: 0,
        };
        Ok((worker, client, request))
    }

    fn exec_failed(
        &self,
        id: SandboxId,
        worker: &WorkerName,
        status: tonic::Status,
    ) -> ControlError {
        match status.code() {
            tonic::Code::NotFound => ControlError::Conflict(format!(
                "sandbox {id} is not on its worker any more (the worker restarted?); delete it and create another"
            )),
            tonic::Code::InvalidArgument => ControlError::Invalid(status.message().to_owned()),
            _ => {
                if status.code() == tonic::Code::Unavailable {
                    self.plane().links.forget(worker);
                }
                ControlError::Unavailable(format!(
                    "worker {worker} could not run the command: {}",
                    status.message()
                ))
            }
        }
    }
}
