//! Buffers that hold substituted secret values and are wiped when the last reference goes
//! (issue 11 item 9). A `HeaderValue` or body chunk built from [`wiped_bytes`] shares one
//! zeroizing allocation with every clone (a replayed request's headers, hyper's queue), so no
//! copy of a value the proxy made outlives the request un-wiped. Copies made by libraries after
//! the proxy hands the bytes over (hyper's write buffer, rustls' records) are beyond its reach and
//! named in the threat model. Nothing here may print the bytes.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::HeaderValue;
use zeroize::Zeroizing;

static WIPED_BYTES: AtomicU64 = AtomicU64::new(0);

/// Owner of a secret-bearing buffer: zeroes it when the last `Bytes` pointing into it is dropped.
struct WipeOnDrop(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for WipeOnDrop {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl Drop for WipeOnDrop {
    fn drop(&mut self) {
        // `Zeroizing` wipes the buffer right after this.
        WIPED_BYTES.fetch_add(self.0.len() as u64, Ordering::Relaxed);
    }
}

/// Shares `bytes` without copying; the allocation is wiped when the last clone is dropped.
pub fn wiped_bytes(bytes: Zeroizing<Vec<u8>>) -> Bytes {
    Bytes::from_owner(WipeOnDrop(bytes))
}

/// A header value over a wiped buffer (`None` when the bytes are not a valid header value).
pub fn wiped_header_value(bytes: Zeroizing<Vec<u8>>) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_maybe_shared(wiped_bytes(bytes)).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Bytes wiped since the process started (tests check that substituted values were).
pub fn wiped_total() -> u64 {
    WIPED_BYTES.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_clone_wipes_the_buffer() {
        let before = wiped_total();
        let value = wiped_header_value(Zeroizing::new(b"secret-value-123".to_vec())).unwrap();
        let clone = value.clone();
        let mut map = http::HeaderMap::new();
        map.insert("x-key", clone);
        let replay = map.clone();
        drop(value);
        drop(map);
        assert_eq!(replay["x-key"], "secret-value-123");
        drop(replay);
        assert!(wiped_total() - before >= 16);
    }
}
