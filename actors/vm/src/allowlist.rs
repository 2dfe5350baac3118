//! Egress host patterns as the sandbox resolver applies them: `host`, `*.suffix`, each with an
//! optional `:port` (ports are the proxy's business; the resolver matches names only). Patterns
//! are normalised (trimmed, lowercase, no trailing dot). A bare `*` is refused: an allowlist
//! must name what it allows. This module must never resolve names or touch the network.

use crate::error::SpecError;

/// One validated host pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name.
    Exact(String),
    /// Any name strictly below this suffix (`*.example.com` matches `api.example.com`).
    Suffix(String),
}

impl HostPattern {
    /// Parses and normalises one allowlist entry.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let refuse = |why: &'static str| SpecError::HostPattern {
            pattern: text.chars().take(80).collect(),
            why,
        };
        let trimmed = text.trim().to_ascii_lowercase();
        let host = match trimmed.rsplit_once(':') {
            Some((host, port)) => {
                if port.parse::<u16>().map_or(true, |number| number == 0) {
                    return Err(refuse("the port after `:` must be 1-65535"));
                }
                host.to_owned()
            }
            None => trimmed,
        };
        let host = host.trim_end_matches('.').to_owned();
        if host == "*" {
            return Err(refuse("a bare `*` would allow everything; name the hosts"));
        }
        let (is_suffix, name) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, host),
        };
        if !is_valid_dns_name(&name) {
            return Err(refuse(
                "expected a DNS name of letters, digits, `-` and `.` (optionally `*.` first)",
            ));
        }
        Ok(if is_suffix {
            HostPattern::Suffix(name)
        } else {
            HostPattern::Exact(name)
        })
    }

    /// Whether a queried DNS name (any case, optional trailing dot) is covered.
    pub fn matches_name(&self, queried: &str) -> bool {
        let normalised = queried.trim_end_matches('.').to_ascii_lowercase();
        match self {
            HostPattern::Exact(name) => normalised == *name,
            HostPattern::Suffix(suffix) => normalised
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

fn is_valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_suffix_patterns_match_as_documented() {
        let exact = HostPattern::parse(" API.Example.com. ").unwrap();
        assert!(exact.matches_name("api.example.com"));
        assert!(exact.matches_name("API.EXAMPLE.COM."));
        assert!(!exact.matches_name("x.api.example.com"));

        let suffix = HostPattern::parse("*.example.com:8443").unwrap();
        assert!(suffix.matches_name("a.example.com"));
        assert!(suffix.matches_name("a.b.example.com"));
        assert!(!suffix.matches_name("example.com"));
        assert!(!suffix.matches_name("badexample.com"));
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        for bad in [
            "*", "", "a..b", "-a.com", "a.com:0", "a.com:x", "a b.com", "*.*",
        ] {
            let error = HostPattern::parse(bad);
            assert!(error.is_err(), "{bad:?} should be refused");
        }
    }
}
