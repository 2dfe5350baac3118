//! What travels on the bus: a payload with string headers, and what a subscriber receives
//! (the same plus the concrete subject and an optional reply subject).

use std::collections::BTreeMap;

use bytes::Bytes;

/// Message headers (`Nats-Msg-Id`, `osb-saga-id`, `osb-correlation-id`, …).
pub type Headers = BTreeMap<String, String>;

/// A message to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusMessage {
    pub headers: Headers,
    pub payload: Bytes,
}

impl BusMessage {
    /// A message with a payload and no headers.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        Self {
            headers: Headers::new(),
            payload: payload.into(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.insert(name.to_owned(), value.into());
        self
    }
}

/// A message as a subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub subject: String,
    pub reply: Option<String>,
    pub headers: Headers,
    pub payload: Bytes,
}
