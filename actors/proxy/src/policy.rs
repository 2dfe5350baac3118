//! The policy core: pure decisions over a session snapshot and the facts of one request, one
//! method per decision point (who is calling, may it reach this host, does the request name the
//! host it was opened to, may this token go there, may this address be dialled). No sockets, no
//! clocks, no logging; every "no" is a [`Refusal`] that explains itself. It must never return or
//! print a secret value except through [`RequestSubstitution::resolve`].

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use osb_proto::{HostPattern, SealedToken};

use crate::refusal::Refusal;
use crate::replacer::TokenResolver;
use crate::session::{SealedSecret, Session};

/// How the request travels to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Https,
    Http,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// Where a connection or request is going, as the proxy established it (CONNECT target, SNI or
/// original destination), normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub scheme: Scheme,
    /// Lowercase host name or IP literal without brackets.
    pub host: String,
    pub port: u16,
}

/// Which addresses the proxy may dial.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Allow 127.0.0.0/8 and ::1 (tests, local development).
    pub allow_loopback: bool,
    /// Allow RFC 1918, CGNAT and unique-local addresses (operator-configured private upstreams).
    pub allow_private: bool,
}

/// The sealing policy. Stateless; methods are the decision points.
#[derive(Debug, Clone, Copy, Default)]
pub struct SealingPolicy {
    pub addresses: AddressPolicy,
}

impl SealingPolicy {
    /// Decision 1: the caller must be a registered sandbox.
    pub fn check_source(
        &self,
        source: IpAddr,
        session: Option<Arc<Session>>,
    ) -> Result<Arc<Session>, Refusal> {
        session.ok_or_else(|| Refusal::unknown_source(source))
    }

    /// Decision 2: egress must be allowed by the project allowlist. DESIGN.md §6 rule 3: an
    /// empty project allowlist means no egress at all; a secret's own `allowedHosts` narrows
    /// where its value may go (decision 4) but never opens egress by itself.
    pub fn check_egress(&self, session: &Session, host: &str, port: u16) -> Result<(), Refusal> {
        let allowed = session
            .egress_allowlist
            .iter()
            .any(|pattern| pattern.matches(host, port));
        if allowed {
            Ok(())
        } else {
            Err(Refusal::host_not_allowed(host, port))
        }
    }

    /// Decision 3: the Host header / `:authority` (and the TLS SNI) must name the target.
    pub fn check_authority(
        &self,
        target: &Target,
        claimed_authority: Option<&str>,
        sni: Option<&str>,
    ) -> Result<(), Refusal> {
        if let Some(sni) = sni {
            let sni = osb_proto::host_pattern::normalised_host(sni);
            if sni != target.host.as_str() {
                return Err(Refusal::misdirected(&target.host, &sni));
            }
        }
        let Some(authority) = claimed_authority else {
            return Ok(());
        };
        let Some((host, port)) = split_authority(authority) else {
            return Err(Refusal::bad_request(
                "the Host header is not a valid host[:port]",
            ));
        };
        let port = port.unwrap_or(target.scheme.default_port());
        if host != target.host || port != target.port {
            return Err(Refusal::misdirected(&target.host, &host));
        }
        Ok(())
    }

    /// Decision 4: may this token's secret go to this target?
    pub fn check_token<'s>(
        &self,
        session: &'s Session,
        token: &SealedToken,
        target: &Target,
    ) -> Result<&'s Arc<SealedSecret>, Refusal> {
        let secret = session
            .secret_for_token(token)
            .ok_or_else(|| Refusal::unknown_token(&target.host))?;
        if target.scheme == Scheme::Http {
            return Err(Refusal::plaintext_secret(&secret.name, &target.host));
        }
        let patterns: &[HostPattern] = if secret.allowed_hosts.is_empty() {
            &session.egress_allowlist
        } else {
            &secret.allowed_hosts
        };
        if patterns
            .iter()
            .any(|pattern| pattern.matches(&target.host, target.port))
        {
            Ok(secret)
        } else {
            Err(Refusal::secret_not_allowed(
                &secret.name,
                &target.host,
                target.port,
            ))
        }
    }

    /// Decision 5: may this resolved address be dialled? Returns why not.
    pub fn check_address(&self, address: IpAddr) -> Result<(), &'static str> {
        match classify(address) {
            AddressClass::Public => Ok(()),
            AddressClass::Loopback if self.addresses.allow_loopback => Ok(()),
            AddressClass::Private if self.addresses.allow_private => Ok(()),
            AddressClass::Loopback => Err("loopback"),
            AddressClass::Private => Err("private"),
            AddressClass::LinkLocalOrMetadata => Err("link-local or metadata"),
            AddressClass::Unroutable => Err("unspecified, broadcast or multicast"),
            AddressClass::Reserved => Err(
                "reserved special-purpose (documentation, benchmarking, transition or future use)",
            ),
        }
    }
}

/// Coarse class of an address for the dial decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    Private,
    LinkLocalOrMetadata,
    Unroutable,
    /// IANA special-purpose blocks that are not globally reachable and no operator setting
    /// opens (documentation, benchmarking, protocol assignments, 6to4/Teredo, future use).
    Reserved,
}

fn in_v4(address: std::net::Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(address) & mask) == (u32::from_be_bytes(network) & mask)
}

fn in_v6(address: std::net::Ipv6Addr, network: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    let network = std::net::Ipv6Addr::from(network);
    (u128::from(address) & mask) == (u128::from(network) & mask)
}

/// Classifies an address (issue 11 item 7: every IANA special-purpose block; IPv6 forms that
/// carry an IPv4 address — mapped, NAT64 — are classified as that address).
pub fn classify(address: IpAddr) -> AddressClass {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(v4: std::net::Ipv4Addr) -> AddressClass {
    const RESERVED: [([u8; 4], u32); 7] = [
        ([192, 0, 0, 0], 24), // IETF protocol assignments (DS-Lite, NAT64 discovery, …)
        ([192, 0, 2, 0], 24), // TEST-NET-1
        ([192, 88, 99, 0], 24), // 6to4 relay anycast (deprecated)
        ([198, 18, 0, 0], 15), // benchmarking
        ([198, 51, 100, 0], 24), // TEST-NET-2
        ([203, 0, 113, 0], 24), // TEST-NET-3
        ([240, 0, 0, 0], 4),  // reserved for future use
    ];
    let octets = v4.octets();
    if v4.is_loopback() {
        AddressClass::Loopback
    } else if v4.is_link_local() || octets == [100, 100, 100, 200] {
        AddressClass::LinkLocalOrMetadata
    } else if v4.is_private() || in_v4(v4, [100, 64, 0, 0], 10) {
        AddressClass::Private
    } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || octets[0] == 0 {
        AddressClass::Unroutable
    } else if RESERVED
        .iter()
        .any(|(network, prefix)| in_v4(v4, *network, *prefix))
    {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(v6: std::net::Ipv6Addr) -> AddressClass {
    const RESERVED: [([u16; 8], u32); 7] = [
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64),      // discard-only
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments (Teredo, benchmarking, ORCHID)
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
        ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), // 6to4
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation
        ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), // segment routing SIDs
        ([0, 0, 0, 0, 0, 0, 0, 0], 96),      // IPv4-compatible (deprecated)
    ];
    if let Some(v4) = v6.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if v6.is_loopback() {
        return AddressClass::Loopback;
    }
    if v6.is_unspecified() || v6.is_multicast() {
        return AddressClass::Unroutable;
    }
    if in_v6(v6, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        let [a, b, c, d] = v6.octets()[12..16] else {
            return AddressClass::Reserved;
        };
        return classify_v4(std::net::Ipv4Addr::new(a, b, c, d));
    }
    if v6.segments() == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254]
        || in_v6(v6, [0xfe80, 0, 0, 0, 0, 0, 0, 0], 10)
    {
        return AddressClass::LinkLocalOrMetadata;
    }
    if in_v6(v6, [0xfc00, 0, 0, 0, 0, 0, 0, 0], 7)
        || in_v6(v6, [0xfec0, 0, 0, 0, 0, 0, 0, 0], 10)
        || in_v6(v6, [0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48)
    {
        return AddressClass::Private;
    }
    if RESERVED
        .iter()
        .any(|(network, prefix)| in_v6(v6, *network, *prefix))
    {
        return AddressClass::Reserved;
    }
    AddressClass::Public
}

/// Parses `host[:port]` / `[v6][:port]` into a normalised host and optional port.
pub fn parse_authority(authority: &str) -> Option<(String, Option<u16>)> {
    split_authority(authority).map(|(host, port)| (host.into_owned(), port))
}

/// [`parse_authority`], borrowing the host when it is already normalised.
pub fn split_authority(authority: &str) -> Option<(std::borrow::Cow<'_, str>, Option<u16>)> {
    let authority = authority.trim();
    if authority.is_empty() || authority.contains(['@', '/', ' ', '?', '#']) {
        return None;
    }
    let (host, port_text) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        match after {
            "" => (inside, None),
            _ => (inside, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => return None,
            None => (authority, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
    {
        return None;
    }
    let port = match port_text {
        None => None,
        Some(text)
            if !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            match text.parse::<u16>() {
                Ok(0) | Err(_) => return None,
                Ok(port) => Some(port),
            }
        }
        Some(_) => return None,
    };
    let host = osb_proto::host_pattern::normalised_host(host);
    // No empty labels ("", ".", "a..b", ".a"): such a name is no host at all.
    let empty_label = !host.contains(':')
        && (host.is_empty() || host.starts_with('.') || host.ends_with('.') || host.contains(".."));
    if host.is_empty() || empty_label {
        return None;
    }
    Some((host, port))
}

/// The resolver used for one request: applies [`SealingPolicy::check_token`] to every token and
/// remembers which secrets were used (names only) for the `secret_used` event.
#[derive(Debug)]
pub struct RequestSubstitution {
    policy: SealingPolicy,
    session: Arc<Session>,
    target: Target,
    used: BTreeSet<String>,
    substitutions: u64,
}

impl RequestSubstitution {
    pub fn new(policy: SealingPolicy, session: Arc<Session>, target: Target) -> Self {
        Self {
            policy,
            session,
            target,
            used: BTreeSet::new(),
            substitutions: 0,
        }
    }

    /// Names of the secrets substituted so far.
    pub fn used(&self) -> &BTreeSet<String> {
        &self.used
    }

    /// Number of tokens substituted so far.
    pub fn substitutions(&self) -> u64 {
        self.substitutions
    }

    /// The target this resolver enforces.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Name of the secret behind a token of this session (for redacting paths in events).
    pub fn secret_name(&self, token: &SealedToken) -> Option<&str> {
        self.session
            .secret_for_token(token)
            .map(|secret| secret.name.as_str())
    }
}

impl TokenResolver for RequestSubstitution {
    fn resolve(&mut self, token: &SealedToken) -> Result<&[u8], Refusal> {
        let secret = self
            .policy
            .check_token(&self.session, token, &self.target)?;
        if !self.used.contains(&secret.name) {
            self.used.insert(secret.name.clone());
        }
        self.substitutions += 1;
        Ok(secret.value.expose_bytes())
    }
}

#[cfg(test)]
mod tests;
