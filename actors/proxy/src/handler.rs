//! One proxied request, start to finish: source check, fronting check, egress check, token
//! substitution in head and body, upstream exchange, response scrubbing, refusal answers and
//! events. The same code serves CONNECT tunnels, transparent TLS, and plain HTTP; the listener
//! only decides the [`Target`]. Policy is re-evaluated for every request of a keep-alive
//! connection. It must never forward a request it refused, nor log a value or token.

use std::net::IpAddr;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::body::{
    empty_body, full_body, incoming_body, ProxyBody, RequestLedger, ScrubbingBody, SubstitutingBody,
};
use crate::cert_cache::LeafCache;
use crate::config::OversizedBody;
use crate::events::{EventSink, ProxyEvent};
use crate::forward::{exchange, ExchangeError, Exchanged, Outgoing, RequestShape};
use crate::metrics::ProxyMetrics;
use crate::policy::{RequestSubstitution, Scheme, SealingPolicy, Target};
use crate::pool::{PoolKey, ReturnSlot, UpstreamPools};
use crate::refusal::Refusal;
use crate::registry::SessionRegistry;
use crate::replacer::substitute_all;
use crate::rewrite::{
    is_upgrade_request, redact_path, rewrite_request_headers, scrub_response_headers,
    substitute_path_and_query,
};
use crate::scrubber::{ScrubTable, StreamScrubber};
use crate::session::Session;
use crate::upstream::UpstreamConnector;

/// State shared by every connection of one proxy.
#[derive(Debug)]
pub struct Shared {
    pub registry: Arc<SessionRegistry>,
    pub policy: SealingPolicy,
    pub leaves: Arc<LeafCache>,
    pub connector: UpstreamConnector,
    /// Upstream connections, per sandbox (ADR 0105).
    pub pools: Arc<UpstreamPools>,
    pub metrics: Arc<ProxyMetrics>,
    pub sink: Arc<dyn EventSink>,
    pub max_buffered_body: usize,
    pub oversized_body: OversizedBody,
    /// Whether simple HTTP/1.1 requests take the express lane (ADR 0107).
    pub express: bool,
    /// Where accepted connections are served (see `lanes`).
    pub(crate) lanes: crate::lanes::Lanes,
}

/// One downstream connection (TCP or TLS inside a tunnel).
#[derive(Debug)]
pub struct ClientConnection {
    pub shared: Arc<Shared>,
    pub source_ip: IpAddr,
    /// SNI the client sent, checked against the target (explicit CONNECT only).
    pub sni: Option<String>,
    pub client_http2: bool,
}

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

/// Facts for an `egress_blocked` event.
#[derive(Debug)]
pub struct BlockFacts<'a> {
    pub source_ip: IpAddr,
    pub session: Option<&'a Session>,
    pub host: Option<&'a str>,
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
}

/// Counts, logs and reports a refusal, and builds the answer.
pub fn refuse(shared: &Shared, facts: BlockFacts<'_>, refusal: Refusal) -> Response<ProxyBody> {
    report_refusal(shared, facts, &refusal);
    refusal_response(&refusal)
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

/// Handles one request toward `target`.
pub async fn handle(
    connection: Arc<ClientConnection>,
    target: Target,
    mut request: Request<Incoming>,
) -> Response<ProxyBody> {
    let shared = &connection.shared;
    shared.metrics.request();
    let method = request.method().as_str().to_owned();
    let raw_path = request.uri().path().to_owned();
    let looked_up = shared.registry.lookup(connection.source_ip);
    let session = match shared.policy.check_source(connection.source_ip, looked_up) {
        Ok(session) => session,
        Err(refusal) => {
            let path = redact_path(&raw_path, None);
            let facts = BlockFacts {
                source_ip: connection.source_ip,
                session: None,
                host: Some(&target.host),
                method: Some(&method),
                path: Some(&path),
            };
            return refuse(shared, facts, refusal);
        }
    };
    let event_path = redact_path(&raw_path, Some(&session));
    let facts = || BlockFacts {
        source_ip: connection.source_ip,
        session: Some(&session),
        host: Some(&target.host),
        method: Some(&method),
        path: Some(&event_path),
    };
    let claimed_authority = match request.version() {
        Version::HTTP_2 => request
            .uri()
            .authority()
            .map(|authority| authority.as_str().to_owned()),
        _ => request
            .headers()
            .get(header::HOST)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
    };
    if let Err(refusal) = shared.policy.check_authority(
        &target,
        claimed_authority.as_deref(),
        connection.sni.as_deref(),
    ) {
        return refuse(shared, facts(), refusal);
    }
    if let Err(refusal) = shared
        .policy
        .check_egress(&session, &target.host, target.port)
    {
        return refuse(shared, facts(), refusal);
    }

    let mut resolver =
        RequestSubstitution::new(shared.policy, Arc::clone(&session), target.clone());
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let path_and_query = match substitute_path_and_query(path_and_query, &mut resolver) {
        Ok(rewritten) => rewritten,
        Err(refusal) => return refuse(shared, facts(), refusal),
    };
    let upgrade = !connection.client_http2 && is_upgrade_request(request.headers());
    let mut headers = match rewrite_request_headers(request.headers(), upgrade, &mut resolver) {
        Ok(headers) => headers,
        Err(refusal) => return refuse(shared, facts(), refusal),
    };
    let ledger = RequestLedger::new(
        Arc::clone(&shared.sink),
        Arc::clone(&shared.metrics),
        session.sandbox_id,
        connection.source_ip,
        target.host.clone(),
        method.clone(),
        event_path.clone(),
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
    let (body, exact_length) = if no_body {
        (empty_body(), None)
    } else {
        match announced_length {
            Some(length) if length <= shared.max_buffered_body as u64 => {
                let collected = match Limited::new(incoming, shared.max_buffered_body)
                    .collect()
                    .await
                {
                    Ok(collected) => collected.to_bytes(),
                    Err(error) => {
                        let refusal = Refusal::bad_request(&format!(
                            "reading the request body failed: {error}"
                        ));
                        return refuse(shared, facts(), refusal);
                    }
                };
                let before = resolver.substitutions();
                let rewritten = match substitute_all(&collected, &mut resolver) {
                    Ok(rewritten) => bytes::Bytes::from(rewritten.into_owned()),
                    Err(refusal) => return refuse(shared, facts(), refusal),
                };
                shared
                    .metrics
                    .substituted(resolver.substitutions() - before);
                ledger.record_use(&resolver);
                let length = rewritten.len() as u64;
                (full_body(rewritten), Some(length))
            }
            Some(length) if shared.oversized_body == OversizedBody::Refuse => {
                // Discard (never keep) what the client still sends so it can read the answer
                // instead of seeing its stream reset.
                tokio::spawn(discard_body(incoming));
                return refuse(
                    shared,
                    facts(),
                    Refusal::body_too_large(length, shared.max_buffered_body),
                );
            }
            _ => {
                let streaming =
                    SubstitutingBody::new(incoming_body(incoming), resolver, Arc::clone(&ledger));
                (http_body_util::BodyExt::boxed_unsync(streaming), None)
            }
        }
    };

    let key = PoolKey::new(
        session.sandbox_id,
        target.clone(),
        connection.client_http2,
        crate::lanes::current_lane(),
    );
    if let Some(length) = exact_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    let outgoing = Outgoing {
        shape: RequestShape {
            method: parts.method.clone(),
            authority: claimed_authority.unwrap_or_else(|| authority_for(&target)),
            path_and_query,
        },
        headers,
        body,
        bodiless: no_body,
        upgrade,
    };
    let exchanged = exchange(&shared.pools, &shared.connector, &key, outgoing).await;
    if let Some(refusal) = ledger.take_refusal() {
        return refusal_response(&refusal);
    }
    let Exchanged {
        mut response,
        sender,
    } = match exchanged {
        Ok(exchanged) => exchanged,
        Err(ExchangeError::Refused(refusal)) => return refuse(shared, facts(), refusal),
        Err(ExchangeError::Failed(error)) => {
            let reason = format!("request failed: {error}");
            return refuse(
                shared,
                facts(),
                Refusal::upstream_failure(&target.host, &reason),
            );
        }
    };
    let table = session.scrub_table().cloned();
    if let (Some(downstream_upgrade), StatusCode::SWITCHING_PROTOCOLS) =
        (downstream_upgrade, response.status())
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        spawn_pipe(downstream_upgrade, upstream_upgrade, target.host.clone());
        let (mut parts, _) = response.into_parts();
        scrub_response_headers(&mut parts.headers, table.as_ref(), true);
        return Response::from_parts(parts, empty_body());
    }
    let slot = if upgrade {
        None
    } else {
        ReturnSlot::for_sender(&shared.pools, key, sender)
    };
    drop(ledger);
    finish_response(shared, &parts.method, response, table, &target, slot).await
}

/// Passes a response body through, handing its connection back to the pool when it ends.
fn passthrough(incoming: Incoming, slot: Option<ReturnSlot>) -> ProxyBody {
    let body = incoming_body(incoming);
    match slot {
        Some(slot) => slot.attach(body),
        None => body,
    }
}

async fn finish_response(
    shared: &Shared,
    method: &http::Method,
    response: Response<Incoming>,
    table: Option<ScrubTable>,
    target: &Target,
    slot: Option<ReturnSlot>,
) -> Response<ProxyBody> {
    let (mut parts, incoming) = response.into_parts();
    parts.version = Version::default();
    scrub_response_headers(&mut parts.headers, table.as_ref(), false);
    let bodiless = method == http::Method::HEAD
        || parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    let Some(table) = table.filter(|_| !bodiless) else {
        return Response::from_parts(parts, passthrough(incoming, slot));
    };
    let announced_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    match announced_length {
        Some(length) if length <= shared.max_buffered_body as u64 => {
            let collected = match Limited::new(incoming, shared.max_buffered_body)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    let refusal = Refusal::upstream_failure(
                        &target.host,
                        &format!("reading the response body failed: {error}"),
                    );
                    shared.metrics.blocked(refusal.code);
                    return refusal_response(&refusal);
                }
            };
            if let Some(slot) = slot {
                slot.release();
            }
            let body = match table.scrub_all(&collected) {
                Some(scrubbed) => {
                    shared.metrics.scrubbed();
                    bytes::Bytes::from(scrubbed)
                }
                None => collected,
            };
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
            Response::from_parts(parts, full_body(body))
        }
        _ => {
            parts.headers.remove(header::CONTENT_LENGTH);
            let scrubbing =
                ScrubbingBody::new(passthrough(incoming, slot), StreamScrubber::new(table));
            Response::from_parts(parts, http_body_util::BodyExt::boxed_unsync(scrubbing))
        }
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

fn spawn_pipe(
    downstream: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    host: String,
) {
    tokio::spawn(async move {
        match tokio::join!(downstream, upstream) {
            (Ok(downstream), Ok(upstream)) => {
                let mut downstream = TokioIo::new(downstream);
                let mut upstream = TokioIo::new(upstream);
                if let Err(error) =
                    tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await
                {
                    tracing::debug!(host = %host, %error, "upgraded connection ended");
                }
            }
            _ => tracing::debug!(host = %host, "upgrade did not complete"),
        }
    });
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
