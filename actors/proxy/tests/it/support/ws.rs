//! A minimal WebSocket frame codec (RFC 6455 §5) for the tests: the sandbox side writes masked
//! frames, the test origins unmasked ones, and both read frames back with their payload
//! unmasked. No extensions; it exists to put a token or a value exactly where a test wants it.

use tokio::io::{AsyncRead, AsyncReadExt};

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
#[allow(dead_code)]
pub const PONG: u8 = 0xa;

/// One frame on the wire.
pub fn frame(fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        len if len < 126 => out.push(mask_bit | len as u8),
        len if len <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A frame read back: (fin, opcode, masked?, payload unmasked).
pub type Read = (bool, u8, bool, Vec<u8>);

pub async fn read_frame<S: AsyncRead + Unpin>(io: &mut S) -> std::io::Result<Read> {
    let mut head = [0u8; 2];
    io.read_exact(&mut head).await?;
    let fin = head[0] & 0x80 != 0;
    let opcode = head[0] & 0x0f;
    let masked = head[1] & 0x80 != 0;
    let length = match head[1] & 0x7f {
        126 => {
            let mut bytes = [0u8; 2];
            io.read_exact(&mut bytes).await?;
            u64::from(u16::from_be_bytes(bytes))
        }
        127 => {
            let mut bytes = [0u8; 8];
            io.read_exact(&mut bytes).await?;
            u64::from_be_bytes(bytes)
        }
        short => u64::from(short),
    };
    let mut key = [0u8; 4];
    if masked {
        io.read_exact(&mut key).await?;
    }
    let mut payload = vec![0u8; length as usize];
    io.read_exact(&mut payload).await?;
    if masked {
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= key[i % 4];
        }
    }
    Ok((fin, opcode, masked, payload))
}

/// Reads data frames until a message is complete: (opcode of its first frame, payload), with
/// control frames in between collected separately.
pub async fn read_message<S: AsyncRead + Unpin>(
    io: &mut S,
    controls: &mut Vec<Read>,
) -> std::io::Result<(u8, Vec<u8>)> {
    let mut opcode = None;
    let mut payload = Vec::new();
    loop {
        let read = read_frame(io).await?;
        if read.1 >= 0x8 {
            let is_close = read.1 == CLOSE;
            controls.push(read);
            if is_close {
                return Err(std::io::Error::other("close frame"));
            }
            continue;
        }
        opcode.get_or_insert(read.1);
        payload.extend_from_slice(&read.3);
        if read.0 {
            return Ok((opcode.unwrap_or(read.1), payload));
        }
    }
}
