//! Chunked transfer coding (RFC 9112 §7.1) for the express lane: a decoder for upstream response
//! bodies that is fed bytes as they arrive and hands back the data it could decode, and the
//! encoder for the bodies the express lane streams to the sandbox. Chunk extensions and trailers
//! are read and dropped. Every line it buffers is bounded; anything malformed is an error, never
//! a guess about where the body ends.

use bytes::{Buf, BytesMut};

/// The longest chunk-size line (size, extensions, CRLF) accepted.
const MAX_SIZE_LINE: usize = 4096;
/// The longest trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;

/// Why a chunked body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    #[error("malformed chunk size line")]
    BadSizeLine,
    #[error("chunk data is not followed by CRLF")]
    MissingCrlf,
    #[error("trailer section too large")]
    TrailersTooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes still to come.
    Data(u64),
    /// After chunk data: CRLF expected.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line.
    Trailers,
    Done,
}

/// An incremental chunked decoder.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    trailer_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self {
            state: State::Size,
            trailer_bytes: 0,
        }
    }

    /// Whether the terminating chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes what it can from `input` and appends decoded data to `output`. Bytes it cannot
    /// use yet (a partial line) stay in `input`; bytes after the end of the body stay too.
    pub fn decode(
        &mut self,
        input: &mut BytesMut,
        output: &mut BytesMut,
    ) -> Result<(), ChunkedError> {
        loop {
            match self.state {
                State::Done => return Ok(()),
                State::Size => {
                    let Some(line_end) = find_crlf(input) else {
                        if input.len() > MAX_SIZE_LINE {
                            return Err(ChunkedError::BadSizeLine);
                        }
                        return Ok(());
                    };
                    if line_end > MAX_SIZE_LINE {
                        return Err(ChunkedError::BadSizeLine);
                    }
                    let size = parse_size_line(&input[..line_end])?;
                    input.advance(line_end + 2);
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(remaining) => {
                    if input.is_empty() {
                        return Ok(());
                    }
                    let take = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    output.extend_from_slice(&input[..take]);
                    input.advance(take);
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd => {
                    if input.len() < 2 {
                        return Ok(());
                    }
                    if &input[..2] != b"\r\n" {
                        return Err(ChunkedError::MissingCrlf);
                    }
                    input.advance(2);
                    self.state = State::Size;
                }
                State::Trailers => {
                    let Some(line_end) = find_crlf(input) else {
                        if self.trailer_bytes + input.len() > MAX_TRAILERS {
                            return Err(ChunkedError::TrailersTooLarge);
                        }
                        return Ok(());
                    };
                    self.trailer_bytes += line_end + 2;
                    if self.trailer_bytes > MAX_TRAILERS {
                        return Err(ChunkedError::TrailersTooLarge);
                    }
                    input.advance(line_end + 2);
                    if line_end == 0 {
                        self.state = State::Done;
                    }
                }
            }
        }
    }
}

fn find_crlf(input: &[u8]) -> Option<usize> {
    memchr::memmem::find(input, b"\r\n")
}

/// `chunk-size [ chunk-ext ]`: hex digits, then optional whitespace and `;extensions`.
fn parse_size_line(line: &[u8]) -> Result<u64, ChunkedError> {
    let digits = line
        .iter()
        .take_while(|byte| byte.is_ascii_hexdigit())
        .count();
    if digits == 0 || digits > 16 {
        return Err(ChunkedError::BadSizeLine);
    }
    let rest = &line[digits..];
    let rest = rest.trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') || rest.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Err(ChunkedError::BadSizeLine);
    }
    let text = std::str::from_utf8(&line[..digits]).map_err(|_| ChunkedError::BadSizeLine)?;
    u64::from_str_radix(text, 16).map_err(|_| ChunkedError::BadSizeLine)
}

/// Appends one chunk (nothing for empty data: an empty chunk would end the body).
pub fn encode_chunk(data: &[u8], output: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    output.extend_from_slice(SizeLine::new(data.len()).as_bytes());
    output.extend_from_slice(data);
    output.extend_from_slice(b"\r\n");
}

/// The line that opens a chunk (`<hex size>\r\n`), built without allocating.
#[derive(Debug, Clone, Copy)]
pub struct SizeLine {
    bytes: [u8; 18],
    start: usize,
}

impl SizeLine {
    pub fn new(size: usize) -> Self {
        let mut bytes = [0u8; 18];
        bytes[16] = b'\r';
        bytes[17] = b'\n';
        let mut start = 16;
        let mut rest = size as u64;
        loop {
            start -= 1;
            bytes[start] = b"0123456789abcdef"[(rest & 0xf) as usize];
            rest >>= 4;
            if rest == 0 {
                break;
            }
        }
        Self { bytes, start }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// The chunk terminator after chunk data.
pub const CRLF: &[u8] = b"\r\n";

/// The last chunk with an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode_in_pieces(
        wire: &[u8],
        piece: usize,
    ) -> Result<(Vec<u8>, bool, Vec<u8>), ChunkedError> {
        let mut decoder = ChunkedDecoder::new();
        let mut input = BytesMut::new();
        let mut output = BytesMut::new();
        for part in wire.chunks(piece.max(1)) {
            input.extend_from_slice(part);
            decoder.decode(&mut input, &mut output)?;
        }
        Ok((output.to_vec(), decoder.is_done(), input.to_vec()))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers_and_leaves_what_follows() {
        let wire = b"5;ext=1\r\nhello\r\n6 ; x\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for piece in 1..wire.len() {
            let (data, done, rest) = decode_in_pieces(wire, piece).expect("valid");
            assert_eq!(data, b"hello world");
            assert!(done);
            assert_eq!(rest, b"NEXT");
        }
    }

    #[test]
    fn refuses_malformed_bodies() {
        for wire in [
            &b"zz\r\n"[..],
            b"\r\n",
            b"5\r\nhelloXX",
            b"11111111111111111\r\n",
            b"5 junk\r\n",
        ] {
            assert!(decode_in_pieces(wire, wire.len()).is_err(), "{wire:?}");
        }
        let long_line = vec![b'1'; MAX_SIZE_LINE + 1];
        assert_eq!(
            decode_in_pieces(&long_line, 7),
            Err(ChunkedError::BadSizeLine)
        );
        let mut huge_trailers = b"0\r\n".to_vec();
        huge_trailers.extend(std::iter::repeat_n(b'a', MAX_TRAILERS + 1));
        assert_eq!(
            decode_in_pieces(&huge_trailers, 100),
            Err(ChunkedError::TrailersTooLarge)
        );
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        let (data, done, _) = decode_in_pieces(b"3\r\nabc\r\n", 2).expect("valid so far");
        assert_eq!(data, b"abc");
        assert!(!done);
    }

    #[test]
    fn size_lines_are_lowercase_hex() {
        for (size, line) in [
            (1usize, "1\r\n"),
            (0xfff6, "fff6\r\n"),
            (usize::MAX, "ffffffffffffffff\r\n"),
        ] {
            assert_eq!(SizeLine::new(size).as_bytes(), line.as_bytes());
        }
    }

    proptest! {
        /// Whatever the chunk boundaries and read sizes, decoding gives back the data encoded.
        #[test]
        fn encode_then_decode_round_trips(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            piece in 1usize..64,
        ) {
            let mut wire = Vec::new();
            for chunk in &chunks {
                encode_chunk(chunk, &mut wire);
            }
            wire.extend_from_slice(LAST_CHUNK);
            let (data, done, rest) = decode_in_pieces(&wire, piece).expect("valid");
            prop_assert_eq!(data, chunks.concat());
            prop_assert!(done);
            prop_assert!(rest.is_empty());
        }
    }
}
