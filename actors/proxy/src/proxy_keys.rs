//! A fast hasher for the maps every request reads whose keys the proxy itself chooses: a
//! session's secrets by sealed token (random tokens the control plane minted) and the registry's
//! sessions by source address (addresses the worker assigned). A sandbox only ever *looks up* a
//! key it picked; it cannot add one, so it can only land in a bucket, never lengthen one, and a
//! keyed hash (SipHash, ~150 instructions per lookup on a 43-byte token) buys nothing here. It
//! must never be used for a map a sandbox can insert into (those keep `RandomState`).

use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate over 8-byte words, with a final avalanche so every key bit reaches the bucket
/// bits hashbrown takes from the top.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProxyKeyHasher(u64);

/// The `BuildHasher` of maps keyed by proxy-chosen keys.
pub type ProxyKeys = BuildHasherDefault<ProxyKeyHasher>;

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl ProxyKeyHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for ProxyKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut array = [0u8; 8];
            array.copy_from_slice(word);
            self.mix(u64::from_le_bytes(array));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut array = [0u8; 8];
            array[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(array) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.mix(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.mix(value as u64);
    }

    fn finish(&self) -> u64 {
        let mut hash = self.0;
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;
    use std::net::{IpAddr, Ipv4Addr};

    use osb_proto::SealedToken;

    use super::*;

    /// Random tokens and a /16 of sandbox addresses spread over the top bits hashbrown uses:
    /// no two of 4,096 keys share the top 20 bits' bucket more than a handful of times.
    #[test]
    fn proxy_keys_spread_over_the_buckets() {
        let keys = ProxyKeys::default();
        let buckets = |hashes: Vec<u64>| {
            let mut counts = std::collections::HashMap::new();
            for hash in hashes {
                *counts.entry(hash >> 52).or_insert(0u32) += 1;
            }
            counts.values().copied().max().unwrap_or(0)
        };
        let tokens: Vec<u64> = (0..4096u32)
            .map(|n| {
                let mut bytes = [0u8; 16];
                bytes[..4].copy_from_slice(&n.to_le_bytes());
                bytes[12..].copy_from_slice(&n.wrapping_mul(2_654_435_761).to_be_bytes());
                keys.hash_one(SealedToken::from_random_bytes(bytes))
            })
            .collect();
        let addresses: Vec<u64> = (0..4096u32)
            .map(|n| keys.hash_one(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n))))
            .collect();
        assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), 4096);
        assert_eq!(addresses.iter().collect::<HashSet<_>>().len(), 4096);
        assert!(buckets(tokens) <= 8);
        assert!(buckets(addresses) <= 8);
    }
}
