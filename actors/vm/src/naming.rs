//! Names of everything the netns runtime creates on the host, derived from the worker's prefix
//! and the sandbox's address slot, so the orphan reaper can find exactly what this worker owns
//! and nothing else. Interface names must fit Linux's 15 bytes. This module must never create
//! anything; it only spells names and parses them back.

/// The per-worker naming scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    prefix: String,
}

/// Why a worker name prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker name prefix {given:?} is invalid: use 2 to 8 lowercase letters or digits, starting with a letter")]
pub struct PrefixError {
    given: String,
}

impl Naming {
    /// Validates the prefix (`[a-z][a-z0-9]{1,7}`).
    pub fn new(prefix: &str) -> Result<Self, PrefixError> {
        let valid = (2..=8).contains(&prefix.len())
            && prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if valid {
            Ok(Self {
                prefix: prefix.to_owned(),
            })
        } else {
            Err(PrefixError {
                given: prefix.chars().take(20).collect(),
            })
        }
    }

    /// The prefix itself (also the cgroup parent directory name).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Network namespace name (`/run/netns/<name>`).
    pub fn netns(&self, slot: u32) -> String {
        format!("{}-n{slot}", self.prefix)
    }

    /// Host-side veth name (at most 8 + 1 + 5 bytes).
    pub fn host_veth(&self, slot: u32) -> String {
        format!("{}h{slot}", self.prefix)
    }

    /// nftables table name (family `inet`).
    pub fn nft_table(&self, slot: u32) -> String {
        format!("{}_s{slot}", self.prefix)
    }

    /// Whether a netns name is one of ours.
    pub fn owns_netns(&self, name: &str) -> bool {
        self.slot_after(name, "-n").is_some()
    }

    /// Whether an interface name is one of our host veths.
    pub fn owns_veth(&self, name: &str) -> bool {
        self.slot_after(name, "h").is_some()
    }

    /// Whether an nftables table name is one of ours.
    pub fn owns_nft_table(&self, name: &str) -> bool {
        self.slot_after(name, "_s").is_some()
    }

    fn slot_after(&self, name: &str, marker: &str) -> Option<u32> {
        let digits = name.strip_prefix(&self.prefix)?.strip_prefix(marker)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_parse_back_strictly() {
        let naming = Naming::new("osbw1234").unwrap();
        let veth = naming.host_veth(16383);
        assert!(veth.len() <= 15, "{veth}");
        assert!(naming.owns_veth(&veth));
        assert!(naming.owns_netns(&naming.netns(3)));
        assert!(naming.owns_nft_table(&naming.nft_table(3)));
        assert!(!naming.owns_veth("osbw1234hh1"));
        assert!(!naming.owns_veth("osbw12345h1"));
        assert!(!naming.owns_netns("osbw1234-n"));
        assert!(!naming.owns_nft_table("other_s1"));
    }

    #[test]
    fn prefixes_are_validated() {
        for bad in ["", "a", "1abc", "ABC", "abcdefghi", "a-b"] {
            assert!(Naming::new(bad).is_err(), "{bad}");
        }
        assert!(Naming::new("ab").is_ok());
    }
}
