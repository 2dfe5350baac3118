//! Frames between the worker and the guest agent over one byte stream (virtio-serial).
//!
//! A frame is `u32` big-endian length (of what follows), one kind byte, a `u64` big-endian
//! exec id, then the payload: JSON for control messages, raw bytes for output. Several execs
//! share the stream, told apart by their id. Frames are bounded (`MAX_FRAME_BYTES`) both ways;
//! an oversized or unknown frame is a protocol error that ends the connection. This module must
//! never carry a secret value: exec environments hold sealed tokens only.

use serde::{Deserialize, Serialize};

/// Bumped whenever frames change; the worker refuses an agent of another version (the guest
/// image must then be rebuilt with `scripts/build-guest.sh`).
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest frame body (kind + id + payload).
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Largest output payload the agent puts in one frame.
pub const OUTPUT_CHUNK_BYTES: usize = 16 * 1024;
/// Name of the virtio-serial port inside the guest.
pub const PORT_NAME: &str = "osb.agent";

const HEADER_BYTES: usize = 1 + 8;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Agent → worker, id 0, JSON `Hello`: the agent is up (also sent at start). Worker →
    /// agent: please greet again (a worker that connected after the first greeting).
    Hello = 1,
    /// Worker → agent, JSON `ExecStart`.
    Exec = 2,
    /// Agent → worker, stdout bytes of exec `id`.
    Stdout = 3,
    /// Agent → worker, stderr bytes of exec `id`.
    Stderr = 4,
    /// Agent → worker, JSON `Exited`; the last frame of exec `id`.
    Exited = 5,
    /// Worker → agent: kill exec `id` (its whole process group).
    Kill = 6,
    /// Worker → agent: flush file systems to disk; answered by `Synced` with the same id.
    Sync = 7,
    /// Agent → worker: the `Sync` with this id is done.
    Synced = 8,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Kind::Hello,
            2 => Kind::Exec,
            3 => Kind::Stdout,
            4 => Kind::Stderr,
            5 => Kind::Exited,
            6 => Kind::Kill,
            7 => Kind::Sync,
            8 => Kind::Synced,
            _ => return None,
        })
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What it is.
    pub kind: Kind,
    /// The exec (or sync) it belongs to; 0 for `Hello`.
    pub id: u64,
    /// JSON or raw output bytes, by kind.
    pub payload: Vec<u8>,
}

/// The agent's greeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    /// `PROTOCOL_VERSION` of the agent.
    pub version: u32,
}

/// A command to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecStart {
    /// Program (looked up on the env's `PATH`) and arguments.
    pub cmd: Vec<String>,
    /// The complete environment of the command (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: String,
    /// uid and gid the command runs as.
    pub uid: u32,
    /// gid the command runs as.
    pub gid: u32,
    /// Kill the command's process group after this many milliseconds.
    pub timeout_ms: u64,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exited {
    /// Exit code; 128+n when killed by signal n; 124 on timeout; 125 when the working
    /// directory is unusable, 126/127 when the program cannot run / is not found (as `env`).
    pub exit_code: i32,
    /// Whether the timeout killed it.
    pub timed_out: bool,
}

/// Why a byte stream is not a valid frame sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// A frame announced more than `MAX_FRAME_BYTES` (or less than its header).
    BadLength(usize),
    /// An unknown kind byte.
    UnknownKind(u8),
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::BadLength(length) => write!(
                f,
                "agent frame of {length} bytes is outside 9..={MAX_FRAME_BYTES}"
            ),
            ProtocolError::UnknownKind(kind) => write!(f, "unknown agent frame kind {kind}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Encodes a frame for the wire. Panics never: an oversized payload is the caller's bug and is
/// cut by `MAX_FRAME_BYTES` checks on the receiving side.
pub fn encode(kind: Kind, id: u64, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(HEADER_BYTES + payload.len()).unwrap_or(u32::MAX);
    let mut bytes = Vec::with_capacity(4 + HEADER_BYTES + payload.len());
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.push(kind as u8);
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// Encodes a frame with a JSON payload.
pub fn encode_json<T: Serialize>(kind: Kind, id: u64, value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    let payload = serde_json::to_vec(value).unwrap_or_default();
    encode(kind, id, &payload)
}

/// Splits a byte stream into frames, whatever the read boundaries.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
}

impl Decoder {
    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        let Some(length_bytes) = self.buffer.get(..4) else {
            return Ok(None);
        };
        let mut length = [0u8; 4];
        length.copy_from_slice(length_bytes);
        let length = u32::from_be_bytes(length) as usize;
        if !(HEADER_BYTES..=MAX_FRAME_BYTES).contains(&length) {
            return Err(ProtocolError::BadLength(length));
        }
        if self.buffer.len() < 4 + length {
            return Ok(None);
        }
        let kind_byte = self.buffer[4];
        let kind = Kind::from_byte(kind_byte).ok_or(ProtocolError::UnknownKind(kind_byte))?;
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.buffer[5..13]);
        let payload = self.buffer[13..4 + length].to_vec();
        self.buffer.drain(..4 + length);
        Ok(Some(Frame {
            kind,
            id: u64::from_be_bytes(id),
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_survive_any_read_boundaries() {
        let mut wire = encode(Kind::Stdout, 7, b"hello");
        wire.extend(encode_json(
            Kind::Exited,
            7,
            &Exited {
                exit_code: 3,
                timed_out: false,
            },
        ));
        for split in 0..wire.len() {
            let mut decoder = Decoder::default();
            decoder.push(&wire[..split]);
            let mut frames = Vec::new();
            while let Some(frame) = decoder.next_frame().unwrap() {
                frames.push(frame);
            }
            decoder.push(&wire[split..]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                frames.push(frame);
            }
            assert_eq!(frames.len(), 2, "split at {split}");
            assert_eq!(frames[0].payload, b"hello");
            let exited: Exited = serde_json::from_slice(&frames[1].payload).unwrap();
            assert_eq!(exited.exit_code, 3);
        }
    }

    #[test]
    fn oversized_and_unknown_frames_are_refused() {
        let mut decoder = Decoder::default();
        decoder.push(&((MAX_FRAME_BYTES + 1) as u32).to_be_bytes());
        assert_eq!(
            decoder.next_frame(),
            Err(ProtocolError::BadLength(MAX_FRAME_BYTES + 1))
        );
        let mut decoder = Decoder::default();
        let mut wire = encode(Kind::Kill, 1, b"");
        wire[4] = 99;
        decoder.push(&wire);
        assert_eq!(decoder.next_frame(), Err(ProtocolError::UnknownKind(99)));
    }
}
