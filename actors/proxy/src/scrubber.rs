//! Response scrubbing: a real secret value echoed back by an upstream is replaced by its sealed
//! token before the sandbox sees it, in header values and in bodies streamed chunk by chunk
//! (a value split across reads is still found; at most `longest value - 1` bytes are held back,
//! and only when they could start a value). It must never log what it scrubs.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use memchr::memmem;

use crate::session::Session;

/// The value → token table of one session snapshot.
#[derive(Debug, Clone)]
pub struct ScrubTable {
    entries: Arc<Vec<ScrubEntry>>,
    longest: usize,
}

struct ScrubEntry {
    finder: memmem::Finder<'static>,
    token: Bytes,
}

impl std::fmt::Debug for ScrubEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScrubEntry({} bytes)", self.finder.needle().len())
    }
}

impl ScrubTable {
    /// The table for every secret of a session. Returns `None` when there is nothing to scrub.
    pub fn for_session(session: &Session) -> Option<Self> {
        let entries: Vec<ScrubEntry> = session
            .secrets()
            .filter(|secret| !secret.value.is_empty())
            .map(|secret| ScrubEntry {
                finder: memmem::Finder::new(secret.value.expose_bytes()).into_owned(),
                token: Bytes::copy_from_slice(secret.token.as_bytes()),
            })
            .collect();
        let longest = entries.iter().map(|e| e.finder.needle().len()).max()?;
        Some(Self {
            entries: Arc::new(entries),
            longest,
        })
    }

    /// The earliest match at or after `from`: (position, entry index). Longest value wins a tie.
    fn earliest(&self, data: &[u8], from: usize) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        for (index, entry) in self.entries.iter().enumerate() {
            if let Some(relative) = entry.finder.find(&data[from..]) {
                let at = from + relative;
                let better = match best {
                    None => true,
                    Some((best_at, best_index)) => {
                        at < best_at
                            || (at == best_at
                                && entry.finder.needle().len()
                                    > self.entries[best_index].finder.needle().len())
                    }
                };
                if better {
                    best = Some((at, index));
                }
            }
        }
        best
    }

    /// Replaces every value in a complete buffer; `None` when nothing was found.
    pub fn scrub_all(&self, data: &[u8]) -> Option<Vec<u8>> {
        let (first_at, first_index) = self.earliest(data, 0)?;
        let mut output = Vec::with_capacity(data.len());
        let mut next = Some((first_at, first_index));
        let mut copied_up_to = 0;
        while let Some((at, index)) = next {
            let entry = &self.entries[index];
            output.extend_from_slice(&data[copied_up_to..at]);
            output.extend_from_slice(&entry.token);
            copied_up_to = at + entry.finder.needle().len();
            next = self.earliest(data, copied_up_to);
        }
        output.extend_from_slice(&data[copied_up_to..]);
        Some(output)
    }

    /// Length of the longest suffix of `data` that is a proper prefix of some value.
    fn held_back_tail(&self, data: &[u8]) -> usize {
        let longest = (self.longest - 1).min(data.len());
        let mut held = 0;
        for entry in self.entries.iter() {
            let needle = entry.finder.needle();
            let limit = (needle.len() - 1).min(longest);
            for len in (held + 1..=limit).rev() {
                if data[data.len() - len..] == needle[..len] {
                    held = len;
                    break;
                }
            }
        }
        held
    }
}

/// Streaming scrubber for one response body.
#[derive(Debug)]
pub struct StreamScrubber {
    table: ScrubTable,
    carry: Vec<u8>,
}

impl StreamScrubber {
    pub fn new(table: ScrubTable) -> Self {
        Self {
            table,
            carry: Vec::new(),
        }
    }

    /// Scrubs one chunk; the output may be empty while bytes are held back. A match is committed
    /// only when no value that starts earlier (or at the same place and is longer) could still
    /// complete in a later chunk, so the result equals scrubbing the whole body at once.
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        let data: Bytes = if self.carry.is_empty() {
            chunk
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(&chunk);
            Bytes::from(joined)
        };
        let mut output = BytesMut::new();
        let mut copied_up_to = 0;
        let hold_from = loop {
            let hold_from = data.len() - self.table.held_back_tail(&data[copied_up_to..]);
            match self.table.earliest(&data, copied_up_to) {
                Some((at, index)) if at < hold_from => {
                    let entry = &self.table.entries[index];
                    output.extend_from_slice(&data[copied_up_to..at]);
                    output.extend_from_slice(&entry.token);
                    copied_up_to = at + entry.finder.needle().len();
                }
                _ => break hold_from,
            }
        };
        self.carry.extend_from_slice(&data[hold_from..]);
        if copied_up_to == 0 {
            return data.slice(..hold_from);
        }
        output.extend_from_slice(&data[copied_up_to..hold_from]);
        output.freeze()
    }

    /// Ends the stream: held-back bytes cannot grow any more, so they are scrubbed as they are.
    pub fn finish(&mut self) -> Bytes {
        let carry = std::mem::take(&mut self.carry);
        match self.table.scrub_all(&carry) {
            Some(scrubbed) => Bytes::from(scrubbed),
            None => Bytes::from(carry),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;

    use osb_proto::{SandboxId, SealedToken};
    use proptest::prelude::*;

    use super::*;
    use crate::secret_value::SecretValue;
    use crate::session::SealedSecret;

    fn table() -> ScrubTable {
        let secrets = [
            ("A", "sk-live-abcdef", 1u8),
            ("B", "sk-live-abcdef-longer", 2),
            ("C", "zz", 3),
            ("D", "azzb", 4),
        ]
        .into_iter()
        .map(|(name, value, byte)| {
            Arc::new(SealedSecret {
                name: name.into(),
                token: SealedToken::from_random_bytes([byte; 16]),
                value: SecretValue::from(value),
                allowed_hosts: vec![],
            })
        });
        let session = Session::new(
            SandboxId::new(),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            vec![],
            secrets,
        );
        ScrubTable::for_session(&session).unwrap()
    }

    fn stream(table: &ScrubTable, chunks: &[&[u8]]) -> Vec<u8> {
        let mut scrubber = StreamScrubber::new(table.clone());
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&scrubber.feed(Bytes::copy_from_slice(chunk)));
        }
        out.extend_from_slice(&scrubber.finish());
        out
    }

    #[test]
    fn echoed_values_become_tokens() {
        let table = table();
        let out = table
            .scrub_all(b"got sk-live-abcdef-longer and sk-live-abcdef")
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("sk-live"));
        assert!(text.contains(SealedToken::from_random_bytes([2; 16]).as_str()));
        assert!(table.scrub_all(b"clean").is_none());
    }

    proptest! {
        #[test]
        fn streaming_equals_whole_buffer(
            pieces in proptest::collection::vec(prop_oneof![
                Just(b"sk-live-abcdef".to_vec()),
                Just(b"sk-live-abcdef-longer".to_vec()),
                Just(b"sk-live-".to_vec()),
                Just(b"z".to_vec()),
                Just(b"a".to_vec()),
                Just(b"b".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..10),
            ], 0..10),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let table = table();
            let input = pieces.concat();
            let expected = table.scrub_all(&input).unwrap_or_else(|| input.clone());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for cut in cuts { chunks.push(&input[last..cut]); last = cut; }
            chunks.push(&input[last..]);
            prop_assert_eq!(stream(&table, &chunks), expected);
        }
    }
}
