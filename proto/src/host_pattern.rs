//! Host patterns of egress allowlists and of a secret's `allowedHosts`: `host`, `*.suffix`, an IP
//! literal (`10.0.0.1`, `[::1]`), each with an optional `:port`. Parsing trims, lowercases and
//! validates, so the REST layer and the proxy agree on one normalised form; errors are sentences a
//! user can act on. This module must never resolve names or accept a pattern that matches
//! everything (a bare `*`).
//!
//! Matching rules (ADR 0101): a pattern without a port matches ports 443 and 80 only; a pattern with
//! a port matches that port only. `*.example.test` matches any subdomain (`a.example.test`,
//! `b.a.example.test`) but not the apex `example.test`.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted pattern, in bytes (a DNS name is at most 253 characters plus a port).
pub const MAX_HOST_PATTERN_LEN: usize = 300;

/// Ports a pattern without an explicit port matches.
pub const DEFAULT_PORTS: [u16; 2] = [443, 80];

/// Why a text is not a valid host pattern. Messages name the input and say what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPatternError {
    #[error("host pattern is empty: write a host such as `api.example.com` or `*.example.com`")]
    Empty,
    #[error("host pattern {0:?} is longer than {MAX_HOST_PATTERN_LEN} characters")]
    TooLong(String),
    #[error("host pattern {0:?} would allow every host: name the hosts, or use `*.suffix` for subdomains")]
    MatchesEverything(String),
    #[error(
        "host pattern {0:?} must be a bare host, not a URL: drop the scheme, path and credentials"
    )]
    NotAHost(String),
    #[error("host pattern {0:?} has an invalid port: use a number from 1 to 65535 after `:`")]
    InvalidPort(String),
    #[error("host pattern {0:?} may use `*` only as the whole first label, as in `*.example.com`")]
    MisplacedWildcard(String),
    #[error("host pattern {0:?} is too broad: a wildcard needs a suffix of at least two labels, as in `*.example.com`")]
    WildcardTooBroad(String),
    #[error("host pattern {0:?} is not a valid host name: use letters, digits, `-` and `.` with labels of 1 to 63 characters")]
    InvalidName(String),
    #[error("host pattern {0:?} is not a valid IP address literal")]
    InvalidIp(String),
}

/// What a pattern matches, before the port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostMatcher {
    /// Exactly this DNS name.
    Exact(String),
    /// Any name strictly below this suffix (the suffix without the leading `*.`).
    Subdomains(String),
    /// Exactly this IP address.
    Ip(IpAddr),
}

/// A validated, normalised host pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    matcher: HostMatcher,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses and normalises one allowlist entry.
    pub fn parse(input: &str) -> Result<Self, HostPatternError> {
        let trimmed = input.trim();
        let shown = || trimmed.chars().take(80).collect::<String>();
        if trimmed.is_empty() {
            return Err(HostPatternError::Empty);
        }
        if trimmed.len() > MAX_HOST_PATTERN_LEN {
            return Err(HostPatternError::TooLong(shown()));
        }
        let lowered = trimmed.to_ascii_lowercase();
        if lowered == "*" || lowered == "*.*" || lowered.starts_with("*:") {
            return Err(HostPatternError::MatchesEverything(shown()));
        }
        if lowered.contains("://")
            || lowered.contains(['/', '@', '?', '#'])
            || lowered.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(HostPatternError::NotAHost(shown()));
        }
        let (host_part, port) =
            split_port(&lowered).map_err(|()| HostPatternError::InvalidPort(shown()))?;
        let matcher = parse_matcher(host_part, &shown)?;
        Ok(Self { matcher, port })
    }

    /// What the pattern matches before the port.
    pub fn matcher(&self) -> &HostMatcher {
        &self.matcher
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The exact host this pattern names (a DNS name or IP literal), or `None` for a wildcard.
    /// Used to pre-mint certificates for a session's allowlist.
    pub fn exact_host(&self) -> Option<String> {
        match &self.matcher {
            HostMatcher::Exact(name) => Some(name.clone()),
            HostMatcher::Ip(ip) => Some(ip.to_string()),
            HostMatcher::Subdomains(_) => None,
        }
    }

    /// Whether a host (any case, optional trailing dot, IPv6 with or without brackets) and port
    /// are matched.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.matches_port(port) && self.matches_host(host)
    }

    /// Whether the port is matched (see the module rules).
    pub fn matches_port(&self, port: u16) -> bool {
        match self.port {
            Some(own) => own == port,
            None => DEFAULT_PORTS.contains(&port),
        }
    }

    /// Whether the host is matched, ignoring the port.
    pub fn matches_host(&self, host: &str) -> bool {
        let host = normalised_host(host);
        match &self.matcher {
            HostMatcher::Exact(name) => host == *name,
            HostMatcher::Subdomains(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix.as_str())
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
            HostMatcher::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|parsed| parsed == *ip),
        }
    }
}

/// Lowercases a host, strips one trailing dot and IPv6 brackets: the form patterns compare against.
pub fn normalise_host(host: &str) -> String {
    normalised_host(host).into_owned()
}

/// [`normalise_host`] without an allocation when the host is already in that form (the common
/// case on the proxy's per-request path).
pub fn normalised_host(host: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = host.trim();
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(trimmed);
    let undotted = unbracketed.strip_suffix('.').unwrap_or(unbracketed);
    if undotted.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(undotted.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(undotted)
    }
}

fn split_port(text: &str) -> Result<(&str, Option<u16>), ()> {
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or(())?;
        return match after {
            "" => Ok((inside, None)),
            _ => after
                .strip_prefix(':')
                .map(parse_port)
                .ok_or(())?
                .map(|port| (inside, Some(port))),
        };
    }
    match text.matches(':').count() {
        0 => Ok((text, None)),
        1 => {
            let (host, port) = text.split_once(':').ok_or(())?;
            Ok((host, Some(parse_port(port)?)))
        }
        // More than one colon without brackets: a bare IPv6 literal, which cannot carry a port.
        _ => Ok((text, None)),
    }
}

fn parse_port(text: &str) -> Result<u16, ()> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(()),
        Ok(port) => Ok(port),
    }
}

fn parse_matcher(host: &str, shown: &dyn Fn() -> String) -> Result<HostMatcher, HostPatternError> {
    if host.contains(':') {
        return host
            .parse::<Ipv6Addr>()
            .map(|ip| HostMatcher::Ip(IpAddr::V6(ip)))
            .map_err(|_| HostPatternError::InvalidIp(shown()));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostMatcher::Ip(ip));
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.contains('*') {
            return Err(HostPatternError::MisplacedWildcard(shown()));
        }
        validate_name(suffix).map_err(|()| HostPatternError::InvalidName(shown()))?;
        if suffix.split('.').count() < 2 {
            return Err(HostPatternError::WildcardTooBroad(shown()));
        }
        return Ok(HostMatcher::Subdomains(suffix.to_owned()));
    }
    if host.contains('*') {
        return Err(HostPatternError::MisplacedWildcard(shown()));
    }
    if looks_numeric(host) {
        return Err(HostPatternError::InvalidIp(shown()));
    }
    validate_name(host).map_err(|()| HostPatternError::InvalidName(shown()))?;
    Ok(HostMatcher::Exact(host.to_owned()))
}

/// A name made only of digits and dots that did not parse as an IPv4 address is a typo'd IP.
fn looks_numeric(host: &str) -> bool {
    host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

fn validate_name(name: &str) -> Result<(), ()> {
    if name.is_empty() || name.len() > 253 {
        return Err(());
    }
    for label in name.split('.') {
        let valid_chars = label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if label.is_empty()
            || label.len() > 63
            || !valid_chars
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(());
        }
    }
    Ok(())
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.matcher, self.port) {
            (HostMatcher::Exact(name), _) => f.write_str(name)?,
            (HostMatcher::Subdomains(suffix), _) => write!(f, "*.{suffix}")?,
            (HostMatcher::Ip(IpAddr::V6(ip)), Some(_)) => write!(f, "[{ip}]")?,
            (HostMatcher::Ip(ip), _) => write!(f, "{ip}")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

impl FromStr for HostPattern {
    type Err = HostPatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> HostPattern {
        HostPattern::parse(text).unwrap()
    }

    #[test]
    fn normalises_case_whitespace_and_trailing_dot() {
        assert_eq!(
            pattern("  API.Example.COM. ").to_string(),
            "api.example.com"
        );
        assert_eq!(
            pattern("*.Example.Test:8443").to_string(),
            "*.example.test:8443"
        );
        assert_eq!(pattern("[::1]:8443").to_string(), "[::1]:8443");
        assert_eq!(pattern("::1").to_string(), "::1");
        assert_eq!(pattern("10.0.0.1:80").to_string(), "10.0.0.1:80");
    }

    #[test]
    fn wildcard_matches_subdomains_not_apex() {
        let wildcard = pattern("*.example.test");
        assert!(wildcard.matches("a.example.test", 443));
        assert!(wildcard.matches("B.a.Example.test.", 443));
        assert!(!wildcard.matches("example.test", 443));
        assert!(!wildcard.matches("badexample.test", 443));
        assert!(!wildcard.matches("example.test.evil", 443));
    }

    #[test]
    fn port_rule_defaults_to_web_ports() {
        let plain = pattern("api.example.test");
        assert!(plain.matches("api.example.test", 443));
        assert!(plain.matches("api.example.test", 80));
        assert!(!plain.matches("api.example.test", 8443));
        let ported = pattern("api.example.test:8443");
        assert!(ported.matches("api.example.test", 8443));
        assert!(!ported.matches("api.example.test", 443));
    }

    #[test]
    fn ip_literals_match_by_address() {
        assert!(pattern("[::1]:9000").matches("[::1]", 9000));
        assert!(pattern("::1").matches("0:0:0:0:0:0:0:1", 443));
        assert!(pattern("127.0.0.1").matches("127.0.0.1", 80));
        assert!(!pattern("127.0.0.1").matches("127.0.0.2", 80));
    }

    #[test]
    fn refuses_garbage_with_clear_errors() {
        let cases = [
            ("", HostPatternError::Empty),
            ("*", HostPatternError::MatchesEverything("*".into())),
            ("*:443", HostPatternError::MatchesEverything("*:443".into())),
            (
                "https://a.com",
                HostPatternError::NotAHost("https://a.com".into()),
            ),
            ("a.com/x", HostPatternError::NotAHost("a.com/x".into())),
            ("a.com:0", HostPatternError::InvalidPort("a.com:0".into())),
            (
                "a.com:99999",
                HostPatternError::InvalidPort("a.com:99999".into()),
            ),
            ("a.com:", HostPatternError::InvalidPort("a.com:".into())),
            (
                "a.*.com",
                HostPatternError::MisplacedWildcard("a.*.com".into()),
            ),
            (
                "*a.com",
                HostPatternError::MisplacedWildcard("*a.com".into()),
            ),
            ("*.com", HostPatternError::WildcardTooBroad("*.com".into())),
            ("-a.com", HostPatternError::InvalidName("-a.com".into())),
            ("a..com", HostPatternError::InvalidName("a..com".into())),
            ("999.1.1.1", HostPatternError::InvalidIp("999.1.1.1".into())),
            ("[zz::1]", HostPatternError::InvalidIp("[zz::1]".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(HostPattern::parse(input), Err(expected), "input {input:?}");
        }
        let message = HostPattern::parse("*").unwrap_err().to_string();
        assert!(message.contains("every host"), "{message}");
    }

    #[test]
    fn serde_round_trips_the_normal_form() {
        let parsed: HostPattern = serde_json::from_str("\"*.Example.test:8443\"").unwrap();
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            "\"*.example.test:8443\""
        );
        assert!(serde_json::from_str::<HostPattern>("\"*\"").is_err());
    }
}
