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
}

/// Classifies an address (IPv4-mapped IPv6 is classified as its IPv4 address).
pub fn classify(address: IpAddr) -> AddressClass {
    match address {
        IpAddr::V4(v4) => {
            let octets = v4.octets();
            if v4.is_loopback() {
                AddressClass::Loopback
            } else if v4.is_link_local() || octets == [100, 100, 100, 200] {
                AddressClass::LinkLocalOrMetadata
            } else if v4.is_private() || (octets[0] == 100 && (64..128).contains(&octets[1])) {
                AddressClass::Private
            } else if v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || octets[0] == 0
            {
                AddressClass::Unroutable
            } else {
                AddressClass::Public
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                AddressClass::Loopback
            } else if (first & 0xffc0) == 0xfe80
                || v6.segments() == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254]
            {
                AddressClass::LinkLocalOrMetadata
            } else if (first & 0xfe00) == 0xfc00 {
                AddressClass::Private
            } else if v6.is_unspecified() || v6.is_multicast() {
                AddressClass::Unroutable
            } else {
                AddressClass::Public
            }
        }
    }
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
    Some((osb_proto::host_pattern::normalised_host(host), port))
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
