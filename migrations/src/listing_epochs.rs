//! Write epochs of the org listings (ADR 0035): a counter per org (hashed into a fixed table of
//! slots) and one for writes whose org the store does not know, bumped by every store method
//! that changes a `projects` or `sandboxes` row *after* its statement or transaction finished.
//! A listing cache reads the epoch *before* its query and serves an entry only while the epoch
//! is unchanged, so a write made through this process is seen by the next read of any cache in
//! the process, without the store knowing what caches exist.
//!
//! The table is process-global (every `Store` handle of every role in a process shares it) and
//! fixed in size: two orgs sharing a slot only invalidate each other more often, never less.
//! It must never hold data — only counters — and a bump must never be skipped on an error path
//! (the guard bumps on drop, also when the writing future is cancelled).

use std::sync::atomic::{AtomicU64, Ordering};

use osb_proto::OrgId;

/// Slots of the per-org table (a power of two).
const SLOTS: usize = 4096;

static ORG_EPOCHS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// Bumped by writes whose org is not known to the store method (saga transitions by id).
static ANY_ORG_EPOCH: AtomicU64 = AtomicU64::new(0);

/// What the listings of one org looked like to the store at one moment; equal epochs mean no
/// write through this process touched the org's projects or sandboxes in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListingEpoch {
    any: u64,
    org: u64,
}

fn slot(org: OrgId) -> &'static AtomicU64 {
    let bits = org.as_uuid().as_u128();
    let folded = (bits ^ (bits >> 64)) as u64;
    // The mask keeps the index below SLOTS; the cast cannot truncate a meaningful bit.
    &ORG_EPOCHS[(folded as usize) & (SLOTS - 1)]
}

/// The org's current epoch.
pub fn listing_epoch(org: OrgId) -> ListingEpoch {
    ListingEpoch {
        any: ANY_ORG_EPOCH.load(Ordering::SeqCst),
        org: slot(org).load(Ordering::SeqCst),
    }
}

/// Marks the org's listings changed (a store write, or an event of another process).
pub fn note_listing_change(org: OrgId) {
    slot(org).fetch_add(1, Ordering::SeqCst);
}

/// Marks every org's listings changed (a write whose org is unknown).
pub fn note_listing_change_everywhere() {
    ANY_ORG_EPOCH.fetch_add(1, Ordering::SeqCst);
}

/// Bumps the epoch when dropped: held across a write, so the bump follows the commit on every
/// path (success, error, `?`, cancellation).
#[derive(Debug)]
#[must_use = "the epoch is bumped when the guard is dropped; hold it across the write"]
pub(crate) struct ListingWrite(Option<OrgId>);

impl ListingWrite {
    /// A write to rows of `org`.
    pub(crate) fn of(org: OrgId) -> Self {
        Self(Some(org))
    }

    /// A write to a row whose org the caller does not know.
    pub(crate) fn of_unknown_org() -> Self {
        Self(None)
    }
}

impl Drop for ListingWrite {
    fn drop(&mut self) {
        match self.0 {
            Some(org) => note_listing_change(org),
            None => note_listing_change_everywhere(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_changes_its_org_epoch_and_an_unknown_write_changes_all() {
        let (a, b) = (OrgId::new(), OrgId::new());
        let before = listing_epoch(a);
        assert_eq!(before, listing_epoch(a));
        drop(ListingWrite::of(a));
        assert_ne!(before, listing_epoch(a));
        let (a_now, b_now) = (listing_epoch(a), listing_epoch(b));
        drop(ListingWrite::of_unknown_org());
        assert_ne!(a_now, listing_epoch(a));
        assert_ne!(b_now, listing_epoch(b));
    }

    #[test]
    fn the_guard_bumps_on_an_early_return() {
        fn failing(org: OrgId) -> Result<(), ()> {
            let _write = ListingWrite::of(org);
            Err(())
        }
        let org = OrgId::new();
        let before = listing_epoch(org);
        assert!(failing(org).is_err());
        assert_ne!(before, listing_epoch(org));
    }
}
