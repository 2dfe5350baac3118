//! The secret version rule, pure: a worker applies a secret update only when its version is
//! newer than the one the session holds, so a delayed or replayed update (several control planes
//! fan out, a retry overtakes a slow push) never rolls a value back. Version 0 means
//! "unversioned" and is accepted only over another 0. This module holds no state and never sees
//! a value.

/// What to do with an update carrying `incoming` when the session holds `held`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionDecision {
    /// The update is newer: apply it.
    Apply,
    /// The session already holds this or a newer version: acknowledge without change.
    AlreadyCurrent,
}

/// The rule.
pub fn decide(held: u64, incoming: u64) -> VersionDecision {
    let unversioned_over_unversioned = incoming == 0 && held == 0;
    if incoming > held || unversioned_over_unversioned {
        VersionDecision::Apply
    } else {
        VersionDecision::AlreadyCurrent
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn only_newer_versions_apply() {
        assert_eq!(decide(2, 1), VersionDecision::AlreadyCurrent);
        assert_eq!(decide(2, 2), VersionDecision::AlreadyCurrent);
        assert_eq!(decide(2, 3), VersionDecision::Apply);
        assert_eq!(decide(0, 1), VersionDecision::Apply);
    }

    #[test]
    fn unversioned_updates_apply_only_over_unversioned_values() {
        assert_eq!(decide(0, 0), VersionDecision::Apply);
        assert_eq!(decide(1, 0), VersionDecision::AlreadyCurrent);
    }

    proptest! {
        /// Whatever order updates arrive in, the held version never goes down and ends at the
        /// highest one delivered.
        #[test]
        fn the_held_version_is_the_maximum_delivered(updates in proptest::collection::vec(0u64..20, 1..40)) {
            let mut held = 0u64;
            for incoming in &updates {
                let before = held;
                if decide(held, *incoming) == VersionDecision::Apply {
                    held = *incoming;
                }
                prop_assert!(held >= before);
            }
            prop_assert_eq!(held, updates.iter().copied().max().unwrap_or(0));
        }
    }
}
