//! WebSocket frame heads (RFC 6455 §5.2): parsing a head from the bytes read so far and writing
//! one. Payloads are not buffered here; the relay streams them. A head the proxy does not accept
//! (reserved bits set — no extension is ever negotiated —, an unknown opcode, a fragmented or
//! oversized control frame, a 64-bit length with the top bit set) is an error, never a guess.

/// Opcodes.
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xa;

/// Longest payload of a control frame.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A parsed frame head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    pub fin: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub length: u64,
    /// Bytes the head took.
    pub head_len: usize,
}

impl FrameHead {
    pub fn is_control(&self) -> bool {
        self.opcode >= 0x8
    }
}

/// Why a frame head is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("reserved bits set (no extension was negotiated)")]
    ReservedBits,
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    #[error("fragmented or oversized control frame")]
    BadControlFrame,
    #[error("frame length out of range")]
    BadLength,
}

/// Parses the head at the start of `buffer`; `Ok(None)` when more bytes are needed.
pub fn parse_head(buffer: &[u8]) -> Result<Option<FrameHead>, FrameError> {
    if buffer.len() < 2 {
        return Ok(None);
    }
    let fin = buffer[0] & 0x80 != 0;
    if buffer[0] & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let opcode = buffer[0] & 0x0f;
    if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
        return Err(FrameError::UnknownOpcode(opcode));
    }
    let masked = buffer[1] & 0x80 != 0;
    let (length, mut at) = match buffer[1] & 0x7f {
        126 => {
            let Some(bytes) = buffer.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4)
        }
        127 => {
            let Some(bytes) = buffer.get(2..10) else {
                return Ok(None);
            };
            let mut array = [0u8; 8];
            array.copy_from_slice(bytes);
            let length = u64::from_be_bytes(array);
            if length >> 63 != 0 {
                return Err(FrameError::BadLength);
            }
            (length, 10)
        }
        short => (u64::from(short), 2),
    };
    if opcode >= 0x8 && (!fin || length > MAX_CONTROL_PAYLOAD as u64) {
        return Err(FrameError::BadControlFrame);
    }
    let mask = if masked {
        let Some(bytes) = buffer.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some([bytes[0], bytes[1], bytes[2], bytes[3]])
    } else {
        None
    };
    Ok(Some(FrameHead {
        fin,
        opcode,
        mask,
        length,
        head_len: at,
    }))
}

/// Appends a frame (head and payload, masked with `mask` when given).
pub fn write_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    out.push((u8::from(fin) << 7) | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        length if length < 126 => out.push(mask_bit | length as u8),
        length if length <= usize::from(u16::MAX) => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(length as u16).to_be_bytes());
        }
        length => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(length as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(
                payload
                    .iter()
                    .enumerate()
                    .map(|(i, byte)| byte ^ key[i % 4]),
            );
        }
        None => out.extend_from_slice(payload),
    }
}

/// Unmasks `payload` in place; `offset` is how far into the frame's payload it starts.
pub fn unmask(payload: &mut [u8], key: [u8; 4], offset: u64) {
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= key[((offset + i as u64) % 4) as usize];
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn refuses_what_it_cannot_relay_faithfully() {
        assert_eq!(parse_head(&[0xc1, 0x00]), Err(FrameError::ReservedBits));
        assert_eq!(parse_head(&[0x83, 0x00]), Err(FrameError::UnknownOpcode(3)));
        assert_eq!(parse_head(&[0x09, 0x00]), Err(FrameError::BadControlFrame));
        assert_eq!(
            parse_head(&[0x89, 126, 0, 126]),
            Err(FrameError::BadControlFrame)
        );
        let mut huge = vec![0x82, 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(parse_head(&huge), Err(FrameError::BadLength));
        assert_eq!(parse_head(&[0x81]), Ok(None));
        assert_eq!(parse_head(&[0x81, 0xfe, 0]), Ok(None));
    }

    proptest! {
        #[test]
        fn written_frames_parse_back(
            fin in any::<bool>(),
            opcode in prop_oneof![Just(TEXT), Just(BINARY), Just(CONTINUATION)],
            mask in proptest::option::of(any::<[u8; 4]>()),
            payload in proptest::collection::vec(any::<u8>(), 0..70_000),
        ) {
            let mut wire = Vec::new();
            write_frame(&mut wire, fin, opcode, mask, &payload);
            let head = parse_head(&wire).unwrap().unwrap();
            prop_assert_eq!((head.fin, head.opcode, head.mask, head.length), (fin, opcode, mask, payload.len() as u64));
            let mut body = wire[head.head_len..].to_vec();
            if let Some(key) = mask {
                unmask(&mut body, key, 0);
            }
            prop_assert_eq!(body, payload);
        }
    }
}
