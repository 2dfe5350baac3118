//! One request on the hyper front end, along the admission hooks: [`admit`] (source, fronting,
//! egress), the head (path, query, headers with tokens substituted; `Accept-Encoding` narrowed
//! for sessions with secrets), the body (buffered within the sandbox's budget to fix its length,
//! refused, or streamed through [`Substitution`]), the upstream exchange, and the response
//! (scrubbed in [`response`], or a WebSocket relayed frame by frame). The same code serves
//! CONNECT tunnels, transparent TLS and plain HTTP; the listener only decides the [`Target`].
//! Policy is re-evaluated for every request of a keep-alive connection. It must never forward a
//! request it refused, nor log a value or token.

mod response;

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::admission::{admit, Admission, Authority};
use crate::body::{empty_body, full_body, incoming_body, ProxyBody, RequestLedger, Substitution};
use crate::config::OversizedBody;
use crate::forward::{exchange, ExchangeError, Exchanged, Outgoing, RequestShape};
use crate::policy::{RequestSubstitution, Scheme, Target};
use crate::pool::{PoolKey, ReturnSlot};
use crate::refusal::Refusal;
use crate::replacer::substitute_all;
use crate::rewrite::{
    is_upgrade_request, is_websocket_upgrade, redact_path, refuse_token_in,
    rewrite_request_headers, substitute_path_and_query, RequestHeaderRules,
};
use crate::session::Session;
use crate::shared::{ClientConnection, Shared};
use crate::transform::TransformedBody;
use crate::wiped::wiped_bytes;

pub use crate::admission::{report_refusal, BlockFacts};

/// What the sandbox sees for a refusal.
pub fn refusal_response(refusal: &Refusal) -> Response<ProxyBody> {
    let mut response = Response::new(full_body(refusal.body()));
    *response.status_mut() =
        StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::FORBIDDEN);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Counts, logs and reports a refusal, and builds the answer.
pub fn refuse(shared: &Shared, facts: BlockFacts<'_>, refusal: Refusal) -> Response<ProxyBody> {
    report_refusal(shared, facts, &refusal);
    refusal_response(&refusal)
}

/// The `host[:port]` of a target, as a `Host` header names it.
pub fn authority_for(target: &Target) -> String {
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    if target.port == target.scheme.default_port() {
        host
    } else {
        format!("{host}:{}", target.port)
    }
}

/// The authority the request claims: `:authority` on HTTP/2, the `Host` header otherwise.
fn claimed_authority<B>(request: &Request<B>) -> Option<String> {
    match request.version() {
        Version::HTTP_2 => request
            .uri()
            .authority()
            .map(|authority| authority.as_str().to_owned()),
        _ => request
            .headers()
            .get(header::HOST)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
    }
}

/// An admitted request on its way: the facts every later refusal is reported with.
struct Forwarding<'a> {
    connection: &'a ClientConnection,
    target: &'a Target,
    admission: &'a Admission<'a>,
    session: Arc<Session>,
}

impl Forwarding<'_> {
    fn shared(&self) -> &Shared {
        &self.connection.shared
    }

    /// Reports a refusal of this request and builds the answer.
    fn refuse(&self, refusal: Refusal) -> Response<ProxyBody> {
        let refusal = refusal.scrubbed(self.session.scrub_table());
        self.admission
            .report(self.shared(), Some(&self.session), &refusal);
        refusal_response(&refusal)
    }
}

/// Handles one request toward `target`.
pub async fn handle(
    connection: Arc<ClientConnection>,
    target: Target,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let shared = &connection.shared;
    shared.metrics.request();
    let method = request.method().as_str().to_owned();
    let raw_path = request.uri().path().to_owned();
    let claimed = claimed_authority(&request);
    let admission = Admission {
        source_ip: connection.source_ip,
        target: &target,
        authority: Authority::Claimed(claimed.as_deref()),
        sni: connection.sni.as_deref(),
        method: Some(&method),
        path: Some(&raw_path),
    };
    let admitted = match admit(shared, &admission) {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal_response(&refusal),
    };
    let forwarding = Forwarding {
        connection: &connection,
        target: &target,
        admission: &admission,
        session: Arc::clone(&admitted.session),
    };
    if request.method() == Method::CONNECT {
        return forwarding.refuse(Refusal::bad_request(
            "CONNECT inside a tunnel is not supported, and neither is WebSocket over HTTP/2 (RFC 8441): open WebSockets over HTTP/1.1",
        ));
    }
    forward(&forwarding, admitted.resolver, request, claimed.clone()).await
}

/// The rewritten request head.
struct Head {
    path_and_query: zeroize::Zeroizing<String>,
    headers: http::HeaderMap,
    upgrade: bool,
}

fn rewrite_head(
    forwarding: &Forwarding<'_>,
    request: &Request<Incoming>,
    resolver: &mut RequestSubstitution,
) -> Result<Head, Refusal> {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    refuse_token_in(request.method().as_str().as_bytes(), "method")?;
    let path_and_query = substitute_path_and_query(path_and_query, resolver)?;
    let upgrade = !forwarding.connection.client_http2 && is_upgrade_request(request.headers());
    if upgrade && !is_websocket_upgrade(request.headers()) {
        return Err(Refusal::bad_request(
            "only WebSocket upgrades are relayed (the proxy must read every frame to keep secrets out of the sandbox)",
        ));
    }
    let rules = RequestHeaderRules {
        keep_upgrade: upgrade,
        accept_encoding: forwarding.session.has_secrets().then(|| {
            crate::encoding::accept_encoding_for(request.headers().contains_key(header::RANGE))
        }),
    };
    let headers = rewrite_request_headers(request.headers(), rules, resolver)?;
    Ok(Head {
        path_and_query,
        headers,
        upgrade,
    })
}

/// The request body for the upstream, with the length it must announce (if known).
async fn prepare_body(
    forwarding: &Forwarding<'_>,
    incoming: Incoming,
    announced_length: Option<u64>,
    resolver: RequestSubstitution,
    ledger: &Arc<RequestLedger>,
) -> Result<(ProxyBody, Option<u64>, Option<crate::limits::BufferPermit>), Refusal> {
    let shared = forwarding.shared();
    let limits = shared.limiter.limits();
    match announced_length {
        Some(length) if length <= shared.max_buffered_body as u64 => {
            let permit = shared
                .limiter
                .reserve_buffer(forwarding.connection.source_ip, length as usize)
                .ok_or_else(|| {
                    Refusal::rate_limited(
                        "this sandbox has too many request bodies buffered in the proxy at once: retry when earlier requests are done",
                    )
                })?;
            let collect = Limited::new(incoming, shared.max_buffered_body).collect();
            let collected = match tokio::time::timeout(limits.body_idle_timeout, collect).await {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(error)) => {
                    return Err(Refusal::bad_request(&format!(
                        "reading the request body failed: {error}"
                    )))
                }
                Err(_) => {
                    shared.metrics.timed_out();
                    return Err(Refusal::request_timeout("the request body"));
                }
            };
            let mut resolver = resolver;
            let rewritten = substitute_all(&collected, &mut resolver)?;
            let body = match rewritten {
                std::borrow::Cow::Borrowed(_) => collected,
                std::borrow::Cow::Owned(replaced) => wiped_bytes(zeroize::Zeroizing::new(replaced)),
            };
            shared.metrics.substituted(resolver.substitutions());
            ledger.record_use(&resolver);
            let length = body.len() as u64;
            Ok((full_body(body), Some(length), Some(permit)))
        }
        Some(length) if shared.oversized_body == OversizedBody::Refuse => {
            // Discard (never keep) what the client still sends so it can read the answer
            // instead of seeing its stream reset.
            tokio::spawn(discard_body(incoming));
            Err(Refusal::body_too_large(length, shared.max_buffered_body))
        }
        _ => {
            let streaming = TransformedBody::new(
                incoming_body(incoming),
                Substitution::new(resolver, Arc::clone(ledger)),
                limits.body_idle_timeout,
                None,
            );
            Ok((streaming.boxed(), None, None))
        }
    }
}

async fn forward(
    forwarding: &Forwarding<'_>,
    mut resolver: RequestSubstitution,
    mut request: Request<Incoming>,
    claimed: Option<String>,
) -> Response<ProxyBody> {
    let shared = forwarding.shared();
    let target = forwarding.target;
    let session = &forwarding.session;
    let Head {
        path_and_query,
        mut headers,
        upgrade,
    } = match rewrite_head(forwarding, &request, &mut resolver) {
        Ok(head) => head,
        Err(refusal) => return forwarding.refuse(refusal),
    };
    let method = request.method().as_str().to_owned();
    let event_path = redact_path(request.uri().path(), Some(session));
    let ledger = RequestLedger::new(
        Arc::clone(&shared.sink),
        Arc::clone(&shared.metrics),
        session.sandbox_id,
        forwarding.connection.source_ip,
        target.host.clone(),
        method,
        event_path,
    );
    shared.metrics.substituted(resolver.substitutions());
    ledger.record_use(&resolver);

    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, incoming) = request.into_parts();
    let announced_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let no_body =
        upgrade || (announced_length.is_none() && http_body::Body::is_end_stream(&incoming));
    let frames_resolver = upgrade
        .then(|| RequestSubstitution::new(shared.policy, Arc::clone(session), target.clone()));
    let (body, exact_length, _buffer_permit) = if no_body {
        (empty_body(), None, None)
    } else {
        match prepare_body(forwarding, incoming, announced_length, resolver, &ledger).await {
            Ok(prepared) => prepared,
            Err(refusal) => return forwarding.refuse(refusal),
        }
    };
    if let Some(length) = exact_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    let key = PoolKey::new(
        session.sandbox_id,
        target.clone(),
        forwarding.connection.client_http2,
        crate::lanes::current_lane(),
    );
    let outgoing = Outgoing {
        shape: RequestShape {
            method: parts.method.clone(),
            authority: claimed.unwrap_or_else(|| authority_for(target)),
            path_and_query,
        },
        headers,
        body,
        bodiless: no_body,
        upgrade,
    };
    let exchanged = exchange(&shared.pools, &shared.connector, &key, outgoing).await;
    if let Some(refusal) = ledger.take_refusal() {
        // Already reported by the body when it found the token.
        return refusal_response(&refusal);
    }
    let Exchanged { response, sender } = match exchanged {
        Ok(exchanged) => exchanged,
        Err(ExchangeError::Refused(refusal)) => return forwarding.refuse(refusal),
        Err(ExchangeError::Failed(error)) => {
            let reason = format!("request failed: {error}");
            return forwarding.refuse(Refusal::upstream_failure(&target.host, &reason));
        }
    };
    let table = session.scrub_table().cloned();
    if let (Some(downstream_upgrade), Some(frames_resolver)) = (downstream_upgrade, frames_resolver)
    {
        let upgraded = response::websocket(
            forwarding,
            response,
            downstream_upgrade,
            frames_resolver,
            table,
            ledger,
        );
        return match upgraded {
            Ok(response) => response,
            Err(refusal) => forwarding.refuse(refusal),
        };
    }
    let slot = if upgrade {
        None
    } else {
        ReturnSlot::for_sender(&shared.pools, key, sender)
    };
    drop(ledger);
    match response::finish(forwarding, &parts.method, response, table, slot).await {
        Ok(response) => response,
        Err(refusal) => forwarding.refuse(refusal),
    }
}

/// Reads and drops a refused body, bounded in bytes and time.
async fn discard_body(mut incoming: Incoming) {
    const DISCARD_LIMIT: usize = 64 * 1024 * 1024;
    let mut discarded = 0usize;
    let drain = async {
        while let Some(Ok(frame)) = incoming.frame().await {
            discarded += frame.data_ref().map_or(0, |data| data.len());
            if discarded > DISCARD_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), drain).await;
}

/// The plain-HTTP target of an absolute-form request (`http://host[:port]/…`).
pub fn plain_http_target(request: &Request<Incoming>) -> Option<Target> {
    let uri = request.uri();
    if uri.scheme_str() != Some("http") {
        return None;
    }
    let host = osb_proto::host_pattern::normalise_host(uri.host()?);
    Some(Target {
        scheme: Scheme::Http,
        host,
        port: uri.port_u16().unwrap_or(80),
    })
}
