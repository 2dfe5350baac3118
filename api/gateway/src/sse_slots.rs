//! A cap on the event streams (`GET /api/events`) an org holds open at once (ADR 0027): each
//! stream holds a slot for as long as it lives and gives it back when it is dropped (client
//! gone, gateway stopping). One org cannot tie up the gateway's connections and bus consumers.
//!
//! It must never leak a slot: the count goes down in `Drop`, whatever ends the stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use osb_proto::OrgId;

/// Event streams per org by default.
pub const DEFAULT_STREAMS_PER_ORG: usize = 16;

/// Open event streams per org.
#[derive(Debug)]
pub struct SseSlots {
    per_org: usize,
    open: Arc<Mutex<HashMap<OrgId, usize>>>,
}

impl Default for SseSlots {
    fn default() -> Self {
        Self::new(DEFAULT_STREAMS_PER_ORG)
    }
}

/// One open stream's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct SseSlot {
    org: OrgId,
    open: Arc<Mutex<HashMap<OrgId, usize>>>,
}

impl Drop for SseSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock() {
            if let Some(count) = open.get_mut(&self.org) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.remove(&self.org);
                }
            }
        }
    }
}

impl SseSlots {
    /// At most `per_org` open streams per org.
    pub fn new(per_org: usize) -> Self {
        Self {
            per_org,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes a slot for `org`, or returns the cap when the org holds all of them.
    pub fn acquire(&self, org: OrgId) -> Result<SseSlot, usize> {
        let mut open = self.open.lock().map_err(|_| self.per_org)?;
        let count = open.entry(org).or_insert(0);
        if *count >= self.per_org {
            return Err(self.per_org);
        }
        *count += 1;
        Ok(SseSlot {
            org,
            open: Arc::clone(&self.open),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_org_and_freed_on_drop() {
        let slots = SseSlots::new(2);
        let (acme, globex) = (OrgId::new(), OrgId::new());
        let first = slots.acquire(acme).expect("one");
        let _second = slots.acquire(acme).expect("two");
        assert_eq!(slots.acquire(acme).unwrap_err(), 2);
        assert!(slots.acquire(globex).is_ok(), "per org");
        drop(first);
        assert!(
            slots.acquire(acme).is_ok(),
            "a closed stream frees its slot"
        );
    }
}
