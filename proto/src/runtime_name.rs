//! The sandbox runtimes a create may ask for (`runtime: "netns" | "microvm"`) and the names a
//! worker advertises in its heartbeat (those two plus `dev`, the cooperative development
//! runtime). One place spells them; the API, placement and the worker read them from here.
//!
//! `dev` is never a name a caller may ask for: a development worker serves `netns` requests
//! only for orgs that opted in, so it must never parse as a [`RuntimeName`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a worker advertises when its only namespace runtime is the development one.
pub const DEV_RUNTIME_ADVERTISED: &str = "dev";

/// A runtime a sandbox can be created on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeName {
    /// Namespaces on the worker's kernel, egress enforced by nftables (the default).
    #[default]
    Netns,
    /// A QEMU `microvm` guest on a tap in its own network namespace.
    Microvm,
}

/// Every name a caller may ask for, in the order error messages list them.
pub const RUNTIME_NAMES: [RuntimeName; 2] = [RuntimeName::Netns, RuntimeName::Microvm];

impl RuntimeName {
    /// The wire form.
    pub const fn as_str(self) -> &'static str {
        match self {
            RuntimeName::Netns => "netns",
            RuntimeName::Microvm => "microvm",
        }
    }
}

impl fmt::Display for RuntimeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A runtime name that is not one of [`RUNTIME_NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("runtime {given:?} is not known; valid runtimes: netns, microvm")]
pub struct UnknownRuntime {
    /// The given text, cut to 32 characters.
    pub given: String,
}

impl FromStr for RuntimeName {
    type Err = UnknownRuntime;

    fn from_str(text: &str) -> Result<Self, UnknownRuntime> {
        RUNTIME_NAMES
            .into_iter()
            .find(|name| name.as_str() == text)
            .ok_or_else(|| UnknownRuntime {
                given: text.chars().take(32).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_dev_is_not_requestable() {
        for name in RUNTIME_NAMES {
            assert_eq!(name.as_str().parse::<RuntimeName>().unwrap(), name);
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{name}\""));
        }
        let error = DEV_RUNTIME_ADVERTISED.parse::<RuntimeName>().unwrap_err();
        assert!(error.to_string().contains("netns, microvm"), "{error}");
        assert!("".parse::<RuntimeName>().is_err());
        assert!("NETNS".parse::<RuntimeName>().is_err());
    }
}
