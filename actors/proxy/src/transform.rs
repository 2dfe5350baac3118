//! The one frame loop of every body the proxy rewrites (issue 11 item 8): a [`FrameTransform`]
//! says what to do with a data chunk, with trailers and at the end; [`TransformedBody`] drives it
//! over an inner body with the two timers every relayed body needs — an idle timeout (a body
//! that goes silent is aborted) and, for transforms that hold bytes back, a flush after a short
//! quiet period (ADR 0108). Request substitution, response scrubbing (with decoding) and plain
//! relaying are all transforms. The loop must never drop a frame or reorder data and trailers.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::body::{BodyError, ProxyBody};
use crate::refusal::Refusal;

/// What a body rewriter does at each point of the stream.
pub trait FrameTransform: Send + Unpin + 'static {
    /// Rewrites one data chunk (the output may be empty while bytes are held back).
    fn data(&mut self, chunk: Bytes) -> Result<Bytes, Refusal>;
    /// Output ready without new input (a decoder's next bounded step); `None` when there is none.
    fn more(&mut self) -> Result<Option<Bytes>, Refusal> {
        Ok(None)
    }
    /// Rewrites the trailers (after [`FrameTransform::finish`] gave the last data).
    fn trailers(&mut self, trailers: HeaderMap) -> Result<HeaderMap, Refusal>;
    /// The end of the data: whatever is still held back.
    fn finish(&mut self) -> Result<Bytes, Refusal>;
    /// Whether bytes are held back that a flush would hand out.
    fn holds_back(&self) -> bool {
        false
    }
    /// Hands out held-back bytes because the input went quiet.
    fn flush(&mut self) -> Bytes {
        Bytes::new()
    }
    /// A refusal ends the body: report it and say what the other side sees.
    fn refused(&mut self, refusal: Refusal) -> BodyError;
    /// The body went silent for too long.
    fn timed_out(&mut self) {}
    /// Whether the output has exactly the input's length (so the size hint passes through).
    fn keeps_length(&self) -> bool {
        false
    }
}

/// The identity transform: relays as it is (still with the idle timeout).
#[derive(Debug, Default)]
pub struct Passthrough;

impl FrameTransform for Passthrough {
    fn data(&mut self, chunk: Bytes) -> Result<Bytes, Refusal> {
        Ok(chunk)
    }

    fn trailers(&mut self, trailers: HeaderMap) -> Result<HeaderMap, Refusal> {
        Ok(trailers)
    }

    fn finish(&mut self) -> Result<Bytes, Refusal> {
        Ok(Bytes::new())
    }

    fn refused(&mut self, refusal: Refusal) -> BodyError {
        BodyError::Refused(refusal.code)
    }

    fn keeps_length(&self) -> bool {
        true
    }
}

/// A body rewritten frame by frame by `T`.
pub struct TransformedBody<T> {
    inner: ProxyBody,
    transform: T,
    done: bool,
    /// The inner body ended (with trailers, or without: `Some(None)`); the transform may still
    /// have output to give before its end.
    input_ended: Option<Option<HeaderMap>>,
    queued: VecDeque<Frame<Bytes>>,
    idle_after: Duration,
    last_input: Instant,
    idle: Pin<Box<Sleep>>,
    flush_after: Option<Duration>,
    flush: Option<Pin<Box<Sleep>>>,
}

impl<T> std::fmt::Debug for TransformedBody<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformedBody")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<T: FrameTransform> TransformedBody<T> {
    /// `idle_after`: silence before the body is aborted; `flush_after`: quiet time before
    /// held-back bytes are handed out (`None`: never before the end).
    pub fn new(
        inner: ProxyBody,
        transform: T,
        idle_after: Duration,
        flush_after: Option<Duration>,
    ) -> Self {
        let now = Instant::now();
        Self {
            inner,
            transform,
            done: false,
            input_ended: None,
            queued: VecDeque::new(),
            idle_after,
            last_input: now,
            idle: Box::pin(tokio::time::sleep_until(now + idle_after)),
            flush_after,
            flush: None,
        }
    }

    pub fn boxed(self) -> ProxyBody {
        http_body_util::BodyExt::boxed_unsync(self)
    }

    fn refuse(&mut self, refusal: Refusal) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.done = true;
        self.queued.clear();
        Poll::Ready(Some(Err(self.transform.refused(refusal))))
    }

    fn end(
        &mut self,
        trailers: Option<HeaderMap>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.done = true;
        let tail = match self.transform.finish() {
            Ok(tail) => tail,
            Err(refusal) => return self.refuse(refusal),
        };
        if !tail.is_empty() {
            self.queued.push_back(Frame::data(tail));
        }
        if let Some(trailers) = trailers {
            match self.transform.trailers(trailers) {
                Ok(trailers) => self.queued.push_back(Frame::trailers(trailers)),
                Err(refusal) => return self.refuse(refusal),
            }
        }
        Poll::Ready(self.queued.pop_front().map(Ok))
    }

    /// Polls the timers while the inner body has nothing: the idle timeout, then the flush.
    fn poll_quiet(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let deadline = self.last_input + self.idle_after;
        if self.idle.deadline() != deadline {
            self.idle.as_mut().reset(deadline);
        }
        if self.idle.as_mut().poll(cx).is_ready() {
            self.done = true;
            self.transform.timed_out();
            return Poll::Ready(Some(Err(BodyError::TimedOut)));
        }
        if let (Some(after), true) = (self.flush_after, self.transform.holds_back()) {
            let timer = self
                .flush
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
            if timer.as_mut().poll(cx).is_ready() {
                self.flush = None;
                let held = self.transform.flush();
                if !held.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(held))));
                }
            }
        }
        Poll::Pending
    }
}

impl<T: FrameTransform> Body for TransformedBody<T> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if let Some(frame) = this.queued.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            // Output the transform can give without new input comes first, one bounded step
            // per frame.
            loop {
                match this.transform.more() {
                    Ok(Some(out)) if !out.is_empty() => {
                        return Poll::Ready(Some(Ok(Frame::data(out))))
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(refusal) => return this.refuse(refusal),
                }
            }
            if let Some(trailers) = this.input_ended.take() {
                return this.end(trailers);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return this.poll_quiet(cx),
                Poll::Ready(None) => this.input_ended = Some(None),
                Poll::Ready(Some(Err(error))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    this.last_input = Instant::now();
                    this.flush = None;
                    match frame.into_data() {
                        Ok(data) => match this.transform.data(data) {
                            Ok(out) if out.is_empty() => {}
                            Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                            Err(refusal) => return this.refuse(refusal),
                        },
                        Err(frame) => {
                            if let Ok(trailers) = frame.into_trailers() {
                                this.input_ended = Some(Some(trailers));
                            }
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.queued.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if self.transform.keeps_length() {
            self.inner.size_hint()
        } else {
            SizeHint::default()
        }
    }
}
