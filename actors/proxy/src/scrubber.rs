//! Response scrubbing: a real secret value echoed back by an upstream — raw or in one of the
//! encodings of [`forms`] — is replaced by its sealed token (in the same encoding) before the
//! sandbox sees it, in header values and in bodies streamed chunk by chunk.
//!
//! The streaming scrubber has a **constant shape** (DESIGN §6 rule 6, ADR 0108): it always holds
//! back the same number of bytes — the session's longest form rounded up to [`HOLDBACK_QUANTUM`]
//! — whatever they contain, so what the sandbox receives and when never depends on whether the
//! tail of a chunk is a prefix of a secret. The only content that changes the output is a whole
//! form, which is replaced. It must never log what it scrubs and never hold back more than its
//! fixed bound.

pub mod forms;

use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use bytes::{Buf, Bytes, BytesMut};

use crate::session::Session;
use forms::{forms_of, Form};

/// The held-back length is a multiple of this minus one, so it reveals the length of the
/// session's longest form only to within this many bytes.
pub const HOLDBACK_QUANTUM: usize = 64;

/// The form → token table of one session snapshot.
#[derive(Clone)]
pub struct ScrubTable {
    inner: Arc<TableInner>,
}

struct TableInner {
    automaton: AhoCorasick,
    forms: Vec<Form>,
    holdback: usize,
    /// The forms lowercased, for header names (which HTTP lowercases); and the shortest one.
    lowercase: Vec<zeroize::Zeroizing<Vec<u8>>>,
    shortest: usize,
}

impl std::fmt::Debug for ScrubTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrubTable")
            .field("forms", &self.inner.forms.len())
            .field("holdback", &self.inner.holdback)
            .finish()
    }
}

/// A form found in a buffer: the replaced span (with mixed base64 neighbours) and its form.
#[derive(Debug, Clone, Copy)]
struct Found {
    /// Where the form itself starts (decides whether it is inside the decidable region).
    matched_at: usize,
    start: usize,
    end: usize,
    form: usize,
}

impl ScrubTable {
    /// The table for every secret of a session. Returns `None` when there is nothing to scrub.
    pub fn for_session(session: &Session) -> Option<Self> {
        let pairs: Vec<(&[u8], &[u8])> = session
            .secrets()
            .filter(|secret| !secret.value.is_empty())
            .map(|secret| (secret.value.expose_bytes(), secret.token.as_bytes()))
            .collect();
        Self::from_values(&pairs)
    }

    /// The table for (value, token) pairs (`None` when empty or unbuildable).
    pub fn from_values(pairs: &[(&[u8], &[u8])]) -> Option<Self> {
        let mut forms: Vec<Form> = Vec::new();
        for (value, token) in pairs {
            for form in forms_of(value, token) {
                if !forms.iter().any(|known| known.needle == form.needle) {
                    forms.push(form);
                }
            }
        }
        let longest = forms
            .iter()
            .map(|form| form.needle.len() + usize::from(form.mixed_right))
            .max()?;
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(forms.iter().map(|form| form.needle.as_slice()))
            .or_else(|_| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(forms.iter().map(|form| form.needle.as_slice()))
            })
            .ok()?;
        let lowercase = forms
            .iter()
            .map(|form| zeroize::Zeroizing::new(form.needle.to_ascii_lowercase()))
            .collect();
        let shortest = forms.iter().map(|form| form.needle.len()).min()?;
        Some(Self {
            inner: Arc::new(TableInner {
                automaton,
                forms,
                holdback: longest.div_ceil(HOLDBACK_QUANTUM) * HOLDBACK_QUANTUM - 1,
                lowercase,
                shortest,
            }),
        })
    }

    /// Bytes a streaming scrubber holds back (fixed for the table).
    pub fn holdback(&self) -> usize {
        self.inner.holdback
    }

    /// Number of forms scrubbed (values times their encodings).
    pub fn form_count(&self) -> usize {
        self.inner.forms.len()
    }

    /// The leftmost (then longest) form starting at or after `from`; its span grows over mixed
    /// base64 neighbours, but never to the left of `floor` (bytes already replaced or sent).
    fn find(&self, data: &[u8], from: usize, floor: usize) -> Option<Found> {
        let found = self
            .inner
            .automaton
            .find(Input::new(data).span(from..data.len()))?;
        let form = &self.inner.forms[found.pattern().as_usize()];
        let (mut start, mut end) = (found.start(), found.end());
        if let Some(alphabet) = form.alphabet {
            if form.mixed_left && start > floor && alphabet.contains(data[start - 1]) {
                start -= 1;
            }
            if form.mixed_right && end < data.len() && alphabet.contains(data[end]) {
                end += 1;
            }
        }
        Some(Found {
            matched_at: found.start(),
            start,
            end,
            form: found.pattern().as_usize(),
        })
    }

    /// Whether any form appears in `data` (one pass, no allocation): a head in which none does
    /// needs no value of it scrubbed.
    pub fn appears_in(&self, data: &[u8]) -> bool {
        self.inner.automaton.is_match(Input::new(data))
    }

    /// Whether a header *name* carries a form of a value (compared without case: HTTP lowercases
    /// names, which would otherwise hand out a lowercased value). Such a header is dropped.
    pub fn name_carries_value(&self, name: &[u8]) -> bool {
        if name.len() < self.inner.shortest {
            return false;
        }
        let lowered = name.to_ascii_lowercase();
        self.inner
            .lowercase
            .iter()
            .any(|needle| memchr::memmem::find(&lowered, needle).is_some())
    }

    fn replacement(&self, found: &Found) -> &[u8] {
        &self.inner.forms[found.form].replacement
    }

    /// Replaces every form in a complete buffer; `None` when nothing was found. This is the
    /// reference the streaming scrubber is tested (and fuzzed) against.
    pub fn scrub_all(&self, data: &[u8]) -> Option<Vec<u8>> {
        let mut output: Option<Vec<u8>> = None;
        let mut copied_up_to = 0;
        while let Some(found) = self.find(data, copied_up_to, copied_up_to) {
            let out = output.get_or_insert_with(|| Vec::with_capacity(data.len()));
            out.extend_from_slice(&data[copied_up_to..found.start]);
            out.extend_from_slice(self.replacement(&found));
            copied_up_to = found.end;
        }
        output.map(|mut out| {
            out.extend_from_slice(&data[copied_up_to..]);
            out
        })
    }
}

/// Streaming scrubber for one body (or one direction of a WebSocket).
///
/// `window` holds bytes not yet sent plus, after a [`StreamScrubber::flush`], the sent bytes a
/// form may still be completing; positions before `decided` can no longer start a form.
#[derive(Debug)]
pub struct StreamScrubber {
    table: ScrubTable,
    window: BytesMut,
    /// `window[..emitted]` has been handed out.
    emitted: usize,
    /// No form starts before this position any more (found ones are replaced).
    decided: usize,
    /// End of the last replacement (a span never grows left over it).
    consumed: usize,
    /// Whether a form was replaced (for the metrics).
    scrubbed: bool,
}

impl StreamScrubber {
    pub fn new(table: ScrubTable) -> Self {
        Self {
            table,
            window: BytesMut::new(),
            emitted: 0,
            decided: 0,
            consumed: 0,
            scrubbed: false,
        }
    }

    /// Whether any form has been replaced so far.
    pub fn scrubbed(&self) -> bool {
        self.scrubbed
    }

    /// Bytes received but not handed out yet.
    pub fn pending(&self) -> usize {
        self.window.len() - self.emitted
    }

    /// Scrubs one chunk. The output is everything received so far except the last
    /// [`ScrubTable::holdback`] + 1 bytes — a length fixed by the table, never by the content —
    /// with every form that starts before that point replaced.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        self.window.extend_from_slice(chunk);
        self.ready()
    }

    /// The buffer input is appended to, so a body can be read straight into it instead of being
    /// copied in through [`StreamScrubber::feed`]. Only append to it, then call
    /// [`StreamScrubber::ready`].
    pub fn input(&mut self) -> &mut BytesMut {
        &mut self.window
    }

    /// Scrubs what was appended through [`StreamScrubber::input`] (the same constant-shape rule
    /// as [`StreamScrubber::feed`]). When nothing was replaced the output shares the input's
    /// memory: no copy.
    pub fn ready(&mut self) -> Bytes {
        let limit = self.window.len().saturating_sub(self.table.holdback());
        self.advance(limit)
    }

    /// Ends the stream: nothing can grow any more, so everything left is scrubbed and handed out.
    pub fn finish(&mut self) -> Bytes {
        let limit = self.window.len();
        let mut out = BytesMut::from(&self.advance(limit)[..]);
        out.extend_from_slice(&self.window[self.emitted..]);
        self.window.clear();
        self.emitted = 0;
        self.decided = 0;
        self.consumed = 0;
        out.freeze()
    }

    /// Hands out the held-back bytes without waiting for more (the body went quiet). Whole forms
    /// among them are replaced first; a form that started in them and completes later is still
    /// replaced from where the output stands, so no whole form is ever handed out as it is.
    pub fn flush(&mut self) -> Bytes {
        let mut out = BytesMut::new();
        loop {
            let floor = self.consumed.max(self.emitted);
            let Some(found) = self.table.find(&self.window, self.decided, floor) else {
                break;
            };
            let start = found.start.max(self.emitted);
            out.extend_from_slice(&self.window[self.emitted..start]);
            out.extend_from_slice(self.table.replacement(&found));
            self.emitted = self.emitted.max(found.end);
            self.decided = found.end;
            self.consumed = found.end;
            self.scrubbed = true;
        }
        out.extend_from_slice(&self.window[self.emitted..]);
        self.emitted = self.window.len();
        self.compact();
        out.freeze()
    }

    /// Decides every start before `limit`, hands out what is decided except one byte (the left
    /// neighbour a base64 form starting next may need), and drops what is no longer needed.
    fn advance(&mut self, limit: usize) -> Bytes {
        let mut out: Option<BytesMut> = None;
        while self.decided < limit {
            let floor = self.consumed.max(self.emitted);
            let Some(found) = self.table.find(&self.window, self.decided, floor) else {
                break;
            };
            if found.matched_at >= limit {
                break;
            }
            let out = out.get_or_insert_with(BytesMut::new);
            let start = found.start.max(self.emitted);
            out.extend_from_slice(&self.window[self.emitted..start]);
            out.extend_from_slice(self.table.replacement(&found));
            self.emitted = self.emitted.max(found.end);
            self.decided = found.end;
            self.consumed = found.end;
            self.scrubbed = true;
        }
        self.decided = self.decided.max(limit);
        let target = self.decided.saturating_sub(1).max(self.emitted);
        let handed = match out {
            None if self.emitted == 0 => {
                let handed = self.window.split_to(target).freeze();
                self.decided -= target;
                self.consumed = self.consumed.saturating_sub(target);
                handed
            }
            out => {
                let mut out = out.unwrap_or_default();
                out.extend_from_slice(&self.window[self.emitted..target]);
                self.emitted = target;
                out.freeze()
            }
        };
        self.compact();
        handed
    }

    /// Drops window bytes that are sent and can no longer be part of an undecided form.
    fn compact(&mut self) {
        let keep_from = self.emitted.min(self.decided.saturating_sub(1));
        if keep_from == 0 {
            return;
        }
        self.window.advance(keep_from);
        self.emitted -= keep_from;
        self.decided -= keep_from;
        self.consumed = self.consumed.saturating_sub(keep_from);
    }
}

#[cfg(test)]
mod tests;
