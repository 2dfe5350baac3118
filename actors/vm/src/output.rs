//! Bounded capture of a command's output: the first `limit` bytes are kept, the rest are counted
//! and reported with a clear marker, so a runaway command cannot exhaust the worker's memory.
//! This module must never block or spawn; it is plain bookkeeping.

/// Marker appended to truncated output (followed by the number of bytes left out).
pub const TRUNCATION_MARKER: &str = "[osb: output truncated";

/// Collects at most `limit` bytes and counts the rest.
#[derive(Debug, Clone)]
pub struct BoundedBuffer {
    limit: usize,
    kept: Vec<u8>,
    omitted: u64,
}

impl BoundedBuffer {
    /// An empty buffer keeping at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            kept: Vec::new(),
            omitted: 0,
        }
    }

    /// Appends a chunk, keeping what fits.
    pub fn push(&mut self, chunk: &[u8]) {
        let room = self.limit.saturating_sub(self.kept.len());
        let taken = room.min(chunk.len());
        self.kept.extend_from_slice(&chunk[..taken]);
        let rest = chunk.len() - taken;
        self.omitted = self.omitted.saturating_add(rest as u64);
    }

    /// Whether anything was dropped.
    pub fn truncated(&self) -> bool {
        self.omitted > 0
    }

    /// The kept text (lossy UTF-8) with a marker line when bytes were dropped.
    pub fn into_text(self) -> (String, bool) {
        let mut text = String::from_utf8_lossy(&self.kept).into_owned();
        let truncated = self.truncated();
        if truncated {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "{TRUNCATION_MARKER}: {} more bytes not shown, limit {} bytes]\n",
                self.omitted, self.limit
            ));
        }
        (text, truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_verbatim() {
        let mut buffer = BoundedBuffer::new(10);
        buffer.push(b"hello");
        assert_eq!(buffer.into_text(), ("hello".to_owned(), false));
    }

    #[test]
    fn long_output_is_cut_with_a_marker_counting_the_rest() {
        let mut buffer = BoundedBuffer::new(4);
        buffer.push(b"abc");
        buffer.push(b"defgh");
        let (text, truncated) = buffer.into_text();
        assert!(truncated);
        assert!(text.starts_with("abcd\n"));
        assert!(text.contains(TRUNCATION_MARKER));
        assert!(text.contains("4 more bytes"));
    }
}
