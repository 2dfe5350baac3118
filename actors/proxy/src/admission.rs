//! The one admission path (issue 11 item 8): every request and every tunnel, whichever front end
//! read it (hyper, the express lane, the explicit listener's CONNECT, the transparent TLS
//! listener before it mints), passes `check_source → check_authority → check_egress` here and
//! comes out as an [`Admitted`] request carrying its [`RequestSubstitution`], or as a refusal that
//! has already been counted, logged and reported as an `egress_blocked` event. Front ends only
//! parse and frame; they must never decide policy themselves.

use std::net::IpAddr;
use std::sync::Arc;

use crate::events::ProxyEvent;
use crate::policy::{RequestSubstitution, Target};
use crate::refusal::Refusal;
use crate::rewrite::redact_path;
use crate::session::Session;
use crate::shared::Shared;

/// What the request says about the host it is for.
#[derive(Debug, Clone, Copy)]
pub enum Authority<'a> {
    /// The `Host` header / `:authority`, to check against the target (and the SNI).
    Claimed(Option<&'a str>),
    /// The front end already checked this exact claim on this connection (its target and SNI
    /// cannot change), so the check would give the same answer.
    Verified,
}

/// The facts of one request (or tunnel) the policy decides on.
#[derive(Debug, Clone, Copy)]
pub struct Admission<'a> {
    pub source_ip: IpAddr,
    pub target: &'a Target,
    pub authority: Authority<'a>,
    /// SNI to check against the target (explicit CONNECT tunnels).
    pub sni: Option<&'a str>,
    /// Method for events (`CONNECT`, `TLS` for a handshake).
    pub method: Option<&'a str>,
    /// Path without query, for events (tokens are redacted before it is reported).
    pub path: Option<&'a str>,
}

/// A request the policy let through, with the resolver that substitutes its tokens.
#[derive(Debug)]
pub struct Admitted {
    pub session: Arc<Session>,
    pub resolver: RequestSubstitution,
}

/// Facts for an `egress_blocked` event.
#[derive(Debug)]
pub struct BlockFacts<'a> {
    pub source_ip: IpAddr,
    pub session: Option<&'a Session>,
    pub host: Option<&'a str>,
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
}

/// Counts, logs and reports a refusal (an `egress_blocked` event).
pub fn report_refusal(shared: &Shared, facts: BlockFacts<'_>, refusal: &Refusal) {
    shared.metrics.blocked(refusal.code);
    tracing::info!(
        source_ip = %facts.source_ip,
        sandbox_id = ?facts.session.map(|s| s.sandbox_id),
        host = facts.host.unwrap_or(""),
        code = %refusal.code,
        "egress blocked"
    );
    shared.sink.emit(ProxyEvent::EgressBlocked {
        sandbox_id: facts.session.map(|s| s.sandbox_id),
        source_ip: facts.source_ip,
        host: facts.host.map(str::to_owned),
        method: facts.method.map(str::to_owned),
        path: facts.path.map(str::to_owned),
        code: refusal.code,
        secret: refusal.secret.clone(),
        reason: refusal.message.clone(),
    });
}

impl Admission<'_> {
    /// Reports a refusal of this request (with the session, once it is known).
    pub fn report(&self, shared: &Shared, session: Option<&Session>, refusal: &Refusal) {
        let path = self.path.map(|path| redact_path(path, session));
        let facts = BlockFacts {
            source_ip: self.source_ip,
            session,
            host: Some(&self.target.host),
            method: self.method,
            path: path.as_deref(),
        };
        report_refusal(shared, facts, refusal);
    }
}

/// Decides whether the request may go on. A refusal has been reported when this returns it.
pub fn admit(shared: &Shared, admission: &Admission<'_>) -> Result<Admitted, Refusal> {
    let looked_up = shared.registry.lookup(admission.source_ip);
    let session = match shared.policy.check_source(admission.source_ip, looked_up) {
        Ok(session) => session,
        Err(refusal) => {
            admission.report(shared, None, &refusal);
            return Err(refusal);
        }
    };
    let target = admission.target;
    if let Err(refusal) = crate::rewrite::refuse_token_in(target.host.as_bytes(), "host name") {
        admission.report(shared, Some(&session), &refusal);
        return Err(refusal);
    }
    let authority = match admission.authority {
        Authority::Verified => Ok(()),
        Authority::Claimed(claimed) => {
            shared
                .policy
                .check_authority(target, claimed, admission.sni)
        }
    };
    let checked = authority.and_then(|()| {
        shared
            .policy
            .check_egress(&session, &target.host, target.port)
    });
    if let Err(refusal) = checked {
        admission.report(shared, Some(&session), &refusal);
        return Err(refusal);
    }
    let resolver = RequestSubstitution::new(shared.policy, Arc::clone(&session), target.clone());
    Ok(Admitted { session, resolver })
}
