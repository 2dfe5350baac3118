//! The sandbox address pool: an IPv4 prefix cut into /30 links, one per sandbox (host side `.1`,
//! sandbox side `.2`). Slot 0 is never handed out: its first address is the synthetic answer the
//! sandbox resolver gives for allowed names, which routes out of the sandbox into the redirect.
//! This module only does arithmetic and bookkeeping; it must never touch the system.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A pool prefix such as `100.96.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Pool {
    network: Ipv4Addr,
    prefix_len: u8,
}

/// Why a pool string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address pool {given:?} is invalid: {why}")]
pub struct PoolParseError {
    given: String,
    why: &'static str,
}

impl FromStr for Ipv4Pool {
    type Err = PoolParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = |why| PoolParseError {
            given: text.chars().take(40).collect(),
            why,
        };
        let (address, length) = text
            .split_once('/')
            .ok_or_else(|| refuse("expected `a.b.c.d/len`"))?;
        let network: Ipv4Addr = address
            .parse()
            .map_err(|_| refuse("the address part is not IPv4"))?;
        let prefix_len: u8 = length
            .parse()
            .map_err(|_| refuse("the length is not a number"))?;
        if !(8..=28).contains(&prefix_len) {
            return Err(refuse(
                "the length must be 8 to 28 (room for at least 3 sandboxes)",
            ));
        }
        let mask = u32::MAX << (32 - prefix_len);
        if u32::from(network) & !mask != 0 {
            return Err(refuse("host bits are set: give the network address"));
        }
        Ok(Self {
            network,
            prefix_len,
        })
    }
}

impl fmt::Display for Ipv4Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// The addresses of one sandbox link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotAddresses {
    /// The slot number (used in interface and table names).
    pub slot: u32,
    /// Host side of the veth (the sandbox's gateway, resolver and explicit proxy address).
    pub gateway: Ipv4Addr,
    /// Sandbox side of the veth: the sandbox's identity toward the proxy.
    pub sandbox: Ipv4Addr,
}

impl Ipv4Pool {
    /// The default pool, `100.96.0.0/16` (see `config::DEFAULT_ADDRESS_POOL`).
    pub const DEFAULT: Ipv4Pool = Ipv4Pool {
        network: Ipv4Addr::new(100, 96, 0, 0),
        prefix_len: 16,
    };

    /// Number of /30 slots (including the reserved slot 0).
    pub fn slot_count(&self) -> u32 {
        1u32 << (30 - u32::from(self.prefix_len))
    }

    /// The addresses of a slot.
    pub fn slot(&self, slot: u32) -> SlotAddresses {
        let base = u32::from(self.network) + slot * 4;
        SlotAddresses {
            slot,
            gateway: Ipv4Addr::from(base + 1),
            sandbox: Ipv4Addr::from(base + 2),
        }
    }

    /// The address the resolver answers for allowed names.
    pub fn dns_answer(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Whether an address lies inside the pool.
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix_len);
        u32::from(address) & mask == u32::from(self.network)
    }
}

/// Tracks which slots are in use.
#[derive(Debug)]
pub struct SlotAllocator {
    pool: Ipv4Pool,
    used: BTreeSet<u32>,
}

impl SlotAllocator {
    /// An allocator with every slot but 0 free.
    pub fn new(pool: Ipv4Pool) -> Self {
        Self {
            pool,
            used: BTreeSet::new(),
        }
    }

    /// Takes the lowest free slot.
    pub fn allocate(&mut self) -> Option<SlotAddresses> {
        let free = (1..self.pool.slot_count()).find(|slot| !self.used.contains(slot))?;
        self.used.insert(free);
        Some(self.pool.slot(free))
    }

    /// Returns a slot; releasing a free slot is harmless.
    pub fn release(&mut self, slot: u32) {
        self.used.remove(&slot);
    }

    /// Slots in use.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_parse_and_refuse_clearly() {
        assert!("100.96.0.0/16".parse::<Ipv4Pool>().is_ok());
        assert!("100.96.0.1/16".parse::<Ipv4Pool>().is_err());
        assert!("100.96.0.0/30".parse::<Ipv4Pool>().is_err());
        assert!("nonsense".parse::<Ipv4Pool>().is_err());
    }

    #[test]
    fn slots_are_distinct_30s_and_slot_zero_is_reserved() {
        let pool: Ipv4Pool = "10.200.0.0/24".parse().unwrap();
        let mut allocator = SlotAllocator::new(pool);
        let first = allocator.allocate();
        assert_eq!(
            first,
            Some(SlotAddresses {
                slot: 1,
                gateway: Ipv4Addr::new(10, 200, 0, 5),
                sandbox: Ipv4Addr::new(10, 200, 0, 6),
            })
        );
        assert_eq!(pool.dns_answer(), Ipv4Addr::new(10, 200, 0, 1));
        let mut count = 1;
        while allocator.allocate().is_some() {
            count += 1;
        }
        assert_eq!(count, 63);
        allocator.release(7);
        assert_eq!(allocator.allocate().map(|s| s.slot), Some(7));
        assert!(pool.contains(Ipv4Addr::new(10, 200, 0, 255)));
        assert!(!pool.contains(Ipv4Addr::new(10, 200, 1, 0)));
    }
}
