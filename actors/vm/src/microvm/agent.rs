//! The worker's side of the guest agent channel: one connection per VM (the unix socket QEMU
//! serves for the virtio-serial port), multiplexing every exec by id. A reader task splits the
//! stream into frames and routes them to each exec's channel (awaiting a slow consumer, which
//! pushes back to the guest instead of buffering without bound). Timeouts are enforced by the
//! agent and guarded here; a dropped stream kills its command in the guest. This module must
//! never send anything but the sandbox's own composed environment (sealed tokens only).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osb_guest_agent::protocol::{
    encode, encode_json, Decoder, ExecStart, Exited, Frame, Hello, Kind, PROTOCOL_VERSION,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use crate::error::RuntimeError;
use crate::runtime::{ExecChunk, ExecStream, TIMEOUT_EXIT_CODE};

/// How long past its own timeout an exec may stay silent before the worker gives up on it.
pub const TIMEOUT_GUARD: Duration = Duration::from_secs(10);
/// Message a command's stderr gets when the VM went away under it.
pub const VM_GONE: &str = "osb: the microVM stopped while the command ran\n";

type Routes = Arc<Mutex<HashMap<u64, mpsc::Sender<Frame>>>>;
type Syncs = Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>;

/// A connected agent.
#[derive(Debug)]
pub struct AgentClient {
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    routes: Routes,
    syncs: Syncs,
    next_id: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for AgentClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl AgentClient {
    /// Connects to the VM's agent socket and waits for the agent's greeting (the guest is
    /// booted and ready to run commands), up to `timeout`.
    pub async fn connect(socket: &Path, timeout: Duration) -> Result<Self, RuntimeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(socket).await {
                Ok(stream) => break stream,
                Err(error) if tokio::time::Instant::now() >= deadline => {
                    return Err(RuntimeError::io(
                        format!("connecting to the agent socket {}", socket.display()),
                        error,
                    ))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let (mut read_half, mut write_half) = stream.into_split();
        // Ask for a greeting too, in case the agent greeted before we connected.
        write_half
            .write_all(&encode(Kind::Hello, 0, b""))
            .await
            .map_err(|e| RuntimeError::io("writing to the agent socket", e))?;
        let mut decoder = Decoder::default();
        let mut buffer = vec![0u8; 64 * 1024];
        let hello = tokio::time::timeout_at(deadline, async {
            loop {
                if let Some(frame) = decoder.next_frame().map_err(protocol_error)? {
                    if frame.kind == Kind::Hello {
                        return serde_json::from_slice::<Hello>(&frame.payload).map_err(|e| {
                            RuntimeError::Setup {
                                step: "greeting the guest agent",
                                detail: e.to_string(),
                            }
                        });
                    }
                    continue;
                }
                let read = read_half
                    .read(&mut buffer)
                    .await
                    .map_err(|e| RuntimeError::io("reading the agent socket", e))?;
                if read == 0 {
                    return Err(RuntimeError::Setup {
                        step: "booting the microVM",
                        detail: "QEMU closed the agent channel before the agent greeted".into(),
                    });
                }
                decoder.push(&buffer[..read]);
            }
        })
        .await
        .map_err(|_| RuntimeError::Setup {
            step: "booting the microVM",
            detail: format!("the guest agent did not greet within {timeout:?}"),
        })??;
        if hello.version != PROTOCOL_VERSION {
            return Err(RuntimeError::Setup {
                step: "greeting the guest agent",
                detail: format!(
                    "the guest agent speaks protocol {}, this worker {PROTOCOL_VERSION}: rebuild the guest with scripts/build-guest.sh",
                    hello.version
                ),
            });
        }
        let routes: Routes = Arc::default();
        let syncs: Syncs = Arc::default();
        let reader = tokio::spawn(read_frames(
            read_half,
            decoder,
            Arc::clone(&routes),
            Arc::clone(&syncs),
        ));
        Ok(Self {
            writer: Arc::new(tokio::sync::Mutex::new(write_half)),
            routes,
            syncs,
            next_id: AtomicU64::new(1),
            reader,
        })
    }

    /// Whether the channel still works (the reader ends when QEMU goes away).
    pub fn is_alive(&self) -> bool {
        !self.reader.is_finished()
    }

    async fn send(&self, frame: Vec<u8>) -> Result<(), RuntimeError> {
        self.writer
            .lock()
            .await
            .write_all(&frame)
            .await
            .map_err(|e| RuntimeError::io("writing to the guest agent", e))
    }

    /// Flushes the guest's file systems to its disks (before a checkpoint copies them).
    pub async fn sync(&self, timeout: Duration) -> Result<(), RuntimeError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (done, waiter) = oneshot::channel();
        if let Ok(mut syncs) = self.syncs.lock() {
            syncs.insert(id, done);
        }
        self.send(encode(Kind::Sync, id, b"")).await?;
        match tokio::time::timeout(timeout, waiter).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(RuntimeError::Setup {
                step: "flushing the guest's disks",
                detail: format!("the guest agent did not confirm within {timeout:?}"),
            }),
        }
    }

    /// Starts a command and streams its output; the stream ends with `ExecChunk::Exited`.
    pub async fn exec(
        &self,
        start: ExecStart,
        timeout: Duration,
    ) -> Result<ExecStream, RuntimeError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (route, mut frames) = mpsc::channel::<Frame>(64);
        if let Ok(mut routes) = self.routes.lock() {
            routes.insert(id, route);
        }
        if let Err(error) = self.send(encode_json(Kind::Exec, id, &start)).await {
            self.forget(id);
            return Err(error);
        }
        drop(start);
        let (sender, chunks) = mpsc::channel(64);
        let writer = Arc::clone(&self.writer);
        let routes = Arc::clone(&self.routes);
        tokio::spawn(async move {
            let guard = tokio::time::sleep(timeout + TIMEOUT_GUARD);
            tokio::pin!(guard);
            // Kill the command in the guest when the caller went away or the guard fired.
            let mut kill = false;
            let exited = loop {
                tokio::select! {
                    frame = frames.recv() => match frame {
                        Some(frame) => match frame.kind {
                            Kind::Stdout | Kind::Stderr => {
                                let chunk = if frame.kind == Kind::Stdout {
                                    ExecChunk::Stdout(frame.payload)
                                } else {
                                    ExecChunk::Stderr(frame.payload)
                                };
                                if sender.send(chunk).await.is_err() {
                                    kill = true;
                                    break None;
                                }
                            }
                            Kind::Exited => {
                                break serde_json::from_slice::<Exited>(&frame.payload).ok().or(Some(Exited { exit_code: -1, timed_out: false }));
                            }
                            _ => {}
                        },
                        None => {
                            let _ = sender.send(ExecChunk::Stderr(VM_GONE.as_bytes().to_vec())).await;
                            break Some(Exited { exit_code: -1, timed_out: false });
                        }
                    },
                    () = &mut guard => {
                        kill = true;
                        break Some(Exited { exit_code: TIMEOUT_EXIT_CODE, timed_out: true });
                    }
                    () = sender.closed() => {
                        kill = true;
                        break None;
                    }
                }
            };
            if let Ok(mut routes) = routes.lock() {
                routes.remove(&id);
            }
            if kill {
                let _ = writer
                    .lock()
                    .await
                    .write_all(&encode(Kind::Kill, id, b""))
                    .await;
            }
            if let Some(exit) = exited {
                let _ = sender
                    .send(ExecChunk::Exited {
                        exit_code: exit.exit_code,
                        timed_out: exit.timed_out,
                    })
                    .await;
            }
        });
        Ok(ExecStream { chunks })
    }

    fn forget(&self, id: u64) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.remove(&id);
        }
    }
}

fn protocol_error(error: osb_guest_agent::protocol::ProtocolError) -> RuntimeError {
    RuntimeError::Setup {
        step: "reading the guest agent channel",
        detail: error.to_string(),
    }
}

async fn read_frames(
    mut read_half: tokio::net::unix::OwnedReadHalf,
    mut decoder: Decoder,
    routes: Routes,
    syncs: Syncs,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    'stream: loop {
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(error = %error, "guest agent sent a bad frame; closing its channel");
                    break 'stream;
                }
            };
            match frame.kind {
                Kind::Synced => {
                    let waiter = syncs.lock().ok().and_then(|mut map| map.remove(&frame.id));
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(());
                    }
                }
                Kind::Stdout | Kind::Stderr | Kind::Exited => {
                    let route = routes
                        .lock()
                        .ok()
                        .and_then(|map| map.get(&frame.id).cloned());
                    if let Some(route) = route {
                        let _ = route.send(frame).await;
                    }
                }
                _ => {}
            }
        }
        match read_half.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => decoder.push(&buffer[..read]),
        }
    }
    // The VM is gone: every waiting exec learns it (its route closes).
    if let Ok(mut routes) = routes.lock() {
        routes.clear();
    }
    if let Ok(mut syncs) = syncs.lock() {
        syncs.clear();
    }
}
