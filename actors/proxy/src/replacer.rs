//! Token substitution: finds `osb_sealed_` with a SIMD prefix search (`memchr::memmem`), parses
//! the 43-byte token and asks a [`TokenResolver`] for the bytes to put in its place (or for a
//! refusal). [`substitute_all`] rewrites a complete buffer; [`StreamReplacer`] rewrites a body
//! chunk by chunk, carrying at most 42 bytes across reads so a token split anywhere is still
//! found. This module decides nothing about policy and must never log what it replaces.

use std::borrow::Cow;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use memchr::memmem;
use osb_proto::{SealedToken, SEALED_TOKEN_LEN, SEALED_TOKEN_PREFIX};

use crate::refusal::Refusal;

const PREFIX: &[u8] = SEALED_TOKEN_PREFIX.as_bytes();

/// Decides what replaces a token. Implementations enforce the policy.
pub trait TokenResolver {
    /// The bytes that replace `token`, or why the request must be refused.
    fn resolve(&mut self, token: &SealedToken) -> Result<&[u8], Refusal>;
}

fn prefix_finder() -> &'static memmem::Finder<'static> {
    static FINDER: OnceLock<memmem::Finder<'static>> = OnceLock::new();
    FINDER.get_or_init(|| memmem::Finder::new(PREFIX))
}

/// Where the token prefix starts in `bytes`, left to right (the prefix cannot overlap itself).
pub(crate) fn prefix_starts(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    prefix_finder().find_iter(bytes)
}

/// Whether `bytes` (shorter than a token) could still grow into a token.
fn could_be_token_start(bytes: &[u8]) -> bool {
    let prefix_part = bytes.len().min(PREFIX.len());
    bytes[..prefix_part] == PREFIX[..prefix_part]
        && bytes[prefix_part..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// Rewrites every token in a complete buffer. Borrows the input when nothing matched.
pub fn substitute_all<'a>(
    input: &'a [u8],
    resolver: &mut dyn TokenResolver,
) -> Result<Cow<'a, [u8]>, Refusal> {
    let finder = prefix_finder();
    let Some(first) = finder.find(input) else {
        return Ok(Cow::Borrowed(input));
    };
    let mut output = Vec::with_capacity(input.len() + 64);
    let mut copied_up_to = 0;
    let mut search_from = first;
    while let Some(relative) = finder.find(&input[search_from..]) {
        let at = search_from + relative;
        let window = input.get(at..at + SEALED_TOKEN_LEN);
        match window.map(SealedToken::from_bytes) {
            Some(Ok(token)) => {
                output.extend_from_slice(&input[copied_up_to..at]);
                output.extend_from_slice(resolver.resolve(&token)?);
                copied_up_to = at + SEALED_TOKEN_LEN;
                search_from = copied_up_to;
            }
            _ => search_from = at + 1,
        }
    }
    output.extend_from_slice(&input[copied_up_to..]);
    Ok(Cow::Owned(output))
}

/// Streaming substitution over a body. Feed chunks in order, then call [`StreamReplacer::finish`].
#[derive(Default)]
pub struct StreamReplacer {
    /// Tail of the previous chunk that may be the start of a token (at most 42 bytes).
    carry: Vec<u8>,
    /// Output buffer reused across chunks (it may hold values, so `Debug` never shows it).
    output: BytesMut,
}

impl std::fmt::Debug for StreamReplacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReplacer")
            .field("pending", &self.carry.len())
            .finish()
    }
}

impl StreamReplacer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held back waiting for the next chunk.
    pub fn pending(&self) -> usize {
        self.carry.len()
    }

    /// Rewrites one chunk. The output may be shorter or longer than the input and may be empty.
    pub fn feed(
        &mut self,
        chunk: Bytes,
        resolver: &mut dyn TokenResolver,
    ) -> Result<Bytes, Refusal> {
        if self.carry.is_empty() {
            // Fast path: no carried bytes, and usually no prefix anywhere in the chunk.
            if prefix_finder().find(&chunk).is_none() {
                let held = held_back_tail(&chunk);
                if held == 0 {
                    return Ok(chunk);
                }
                self.carry.extend_from_slice(&chunk[chunk.len() - held..]);
                return Ok(chunk.slice(..chunk.len() - held));
            }
            return self.rewrite(&chunk, resolver);
        }
        let mut joined = std::mem::take(&mut self.carry);
        joined.extend_from_slice(&chunk);
        self.rewrite(&joined, resolver)
    }

    /// Ends the stream: whatever was held back cannot become a token any more and is released.
    pub fn finish(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.carry))
    }

    fn rewrite(&mut self, data: &[u8], resolver: &mut dyn TokenResolver) -> Result<Bytes, Refusal> {
        let finder = prefix_finder();
        let mut output = std::mem::take(&mut self.output);
        output.reserve(data.len() + 64);
        let mut copied_up_to = 0;
        let mut search_from = 0;
        while let Some(relative) = finder.find(&data[search_from..]) {
            let at = search_from + relative;
            let available = &data[at..];
            if available.len() < SEALED_TOKEN_LEN {
                if could_be_token_start(available) {
                    output.extend_from_slice(&data[copied_up_to..at]);
                    self.carry.extend_from_slice(available);
                    if copied_up_to > 0 {
                        return Ok(Self::wiped(output));
                    }
                    return Ok(self.emit(output));
                }
                search_from = at + 1;
                continue;
            }
            match SealedToken::from_bytes(&available[..SEALED_TOKEN_LEN]) {
                Ok(token) => {
                    output.extend_from_slice(&data[copied_up_to..at]);
                    output.extend_from_slice(resolver.resolve(&token)?);
                    copied_up_to = at + SEALED_TOKEN_LEN;
                    search_from = copied_up_to;
                }
                Err(_) => search_from = at + 1,
            }
        }
        let rest = &data[copied_up_to..];
        let held = held_back_tail(rest);
        output.extend_from_slice(&rest[..rest.len() - held]);
        self.carry.extend_from_slice(&rest[rest.len() - held..]);
        if copied_up_to > 0 {
            return Ok(Self::wiped(output));
        }
        Ok(self.emit(output))
    }

    /// Output that holds substituted values: moved into a buffer wiped when the last reference
    /// is dropped, and the working buffer zeroed (it is not reused).
    fn wiped(mut output: BytesMut) -> Bytes {
        let copy = zeroize::Zeroizing::new(output.to_vec());
        zeroize::Zeroize::zeroize(output.as_mut());
        crate::wiped::wiped_bytes(copy)
    }

    /// Hands out what was written and keeps the buffer so its allocation is reused once the
    /// handed-out bytes are dropped.
    fn emit(&mut self, mut output: BytesMut) -> Bytes {
        let written = output.split().freeze();
        self.output = output;
        written
    }
}

/// Length of the longest suffix of `data` that is a proper prefix of `osb_sealed_` (a full prefix
/// would have been found by the search).
fn held_back_tail(data: &[u8]) -> usize {
    let longest = (PREFIX.len() - 1).min(data.len());
    (1..=longest)
        .rev()
        .find(|&len| data[data.len() - len..] == PREFIX[..len])
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
