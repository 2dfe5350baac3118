//! Where a streamed response body lands on the express lane, and how it leaves (issue 19): body
//! bytes are read (or de-chunked) straight into the stage's input buffer, scrubbed there in
//! place, and handed out as slices of that same memory, which the relay writes to the sandbox
//! with one vectored write per read — so an identity body is copied only by the two TLS
//! layers. Compressed bodies go through the decoder and a scrubber of their own
//! ([`Scrubbing`], ADR 0109). The stage must never hand out bytes the constant-shape scrubber
//! has not decided (ADR 0108), and its buffers never grow past one read plus the hold-back.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::body::Scrubbing;
use crate::encoding::{Coding, Decoder};
use crate::metrics::ProxyMetrics;
use crate::refusal::Refusal;
use crate::scrubber::{ScrubTable, StreamScrubber};
use crate::transform::FrameTransform;

/// Room reserved in the input before each read: a few full TLS records.
pub(super) const BODY_READ: usize = 64 * 1024;

/// The body pipeline of one streamed response.
pub(super) enum Stage {
    /// A session without secrets: bytes leave as they arrive.
    Plain(BytesMut),
    /// An identity body scrubbed in the scrubber's own window.
    Scrub {
        scrubber: StreamScrubber,
        metrics: Arc<ProxyMetrics>,
        counted: bool,
    },
    /// A compressed body: the coded bytes land here, then decode and scrub.
    Decode(Box<Scrubbing>, BytesMut),
}

impl Stage {
    pub(super) fn new(
        table: Option<&ScrubTable>,
        coding: Coding,
        metrics: &Arc<ProxyMetrics>,
    ) -> Self {
        match (table, coding) {
            (None, _) => Stage::Plain(BytesMut::new()),
            (Some(table), Coding::Identity) => Stage::Scrub {
                scrubber: StreamScrubber::new(table.clone()),
                metrics: Arc::clone(metrics),
                counted: false,
            },
            (Some(table), coding) => Stage::Decode(
                Box::new(Scrubbing::new(
                    table.clone(),
                    Decoder::for_coding(coding),
                    Arc::clone(metrics),
                )),
                BytesMut::new(),
            ),
        }
    }

    /// The buffer body bytes are appended to, with room for one more read.
    pub(super) fn input(&mut self) -> &mut BytesMut {
        let input = match self {
            Stage::Plain(input) | Stage::Decode(_, input) => input,
            Stage::Scrub { scrubber, .. } => scrubber.input(),
        };
        if input.capacity() - input.len() < BODY_READ / 4 {
            input.reserve(BODY_READ);
        }
        input
    }

    /// Moves what the input holds through the pipeline; output goes to `out`.
    pub(super) fn drain(&mut self, out: &mut Vec<Bytes>) -> Result<(), Refusal> {
        match self {
            Stage::Plain(input) => push(out, input.split().freeze()),
            Stage::Scrub {
                scrubber,
                metrics,
                counted,
            } => {
                push(out, scrubber.ready());
                if scrubber.scrubbed() && !*counted {
                    *counted = true;
                    metrics.scrubbed();
                }
            }
            Stage::Decode(scrubbing, input) => {
                if !input.is_empty() {
                    push(out, scrubbing.data(input.split().freeze())?);
                }
                while let Some(step) = scrubbing.more()? {
                    push(out, step);
                }
            }
        }
        Ok(())
    }

    /// The end of the body: everything still held back.
    pub(super) fn finish(&mut self, out: &mut Vec<Bytes>) -> Result<(), Refusal> {
        self.drain(out)?;
        match self {
            Stage::Plain(_) => {}
            Stage::Scrub {
                scrubber,
                metrics,
                counted,
            } => {
                push(out, scrubber.finish());
                if scrubber.scrubbed() && !*counted {
                    *counted = true;
                    metrics.scrubbed();
                }
            }
            Stage::Decode(scrubbing, _) => push(out, scrubbing.finish()?),
        }
        Ok(())
    }

    /// Whether bytes are held back that a quiet period would flush.
    pub(super) fn holds_back(&self) -> bool {
        match self {
            Stage::Plain(_) => false,
            Stage::Scrub { scrubber, .. } => scrubber.pending() > 0,
            Stage::Decode(scrubbing, _) => scrubbing.holds_back(),
        }
    }

    /// Hands out the held-back bytes (the upstream went quiet).
    pub(super) fn flush(&mut self, out: &mut Vec<Bytes>) {
        match self {
            Stage::Plain(_) => {}
            Stage::Scrub { scrubber, .. } => push(out, scrubber.flush()),
            Stage::Decode(scrubbing, _) => push(out, scrubbing.flush()),
        }
    }
}

fn push(out: &mut Vec<Bytes>, piece: Bytes) {
    if !piece.is_empty() {
        out.push(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"osb_sealed_0101010101010101010101010101010a";

    fn run(stage: &mut Stage, pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in pieces {
            stage.input().extend_from_slice(piece);
            stage.drain(&mut out).expect("drains");
        }
        stage.finish(&mut out).expect("finishes");
        out.concat()
    }

    #[test]
    fn the_scrubbing_stage_replaces_a_value_split_between_reads() {
        let metrics = Arc::new(ProxyMetrics::default());
        let table = ScrubTable::from_values(&[(b"sk-live-abcdef", TOKEN)]).expect("table");
        let mut stage = Stage::new(Some(&table), Coding::Identity, &metrics);
        let out = run(&mut stage, &[b"a=sk-li", b"ve-abcdef&b=1"]);
        let mut expected = b"a=".to_vec();
        expected.extend_from_slice(TOKEN);
        expected.extend_from_slice(b"&b=1");
        assert_eq!(out, expected);
        assert_eq!(metrics.scrubbed_responses(), 1);
    }

    #[test]
    fn the_plain_stage_passes_bytes_as_they_are() {
        let metrics = Arc::new(ProxyMetrics::default());
        let mut stage = Stage::new(None, Coding::Identity, &metrics);
        assert_eq!(run(&mut stage, &[b"abc", b"", b"def"]), b"abcdef");
        assert!(!stage.holds_back());
    }
}
