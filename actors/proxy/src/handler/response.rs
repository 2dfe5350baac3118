//! The response half of the hyper front end: hop-by-hop headers dropped, values scrubbed from
//! headers, the reason phrase dropped (the sandbox gets the canonical one, like on the express
//! lane), the body scrubbed — buffered to recompute its length when it is small and the
//! sandbox's buffer budget allows, streamed with a constant shape otherwise, decoded first when
//! compressed (ADR 0109) — and a `101` turned into a WebSocket relay. It must never pass a body
//! of a session with secrets unscrubbed.

use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Response, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::Forwarding;
use crate::body::{full_body, incoming_body, ProxyBody, RequestLedger, Scrubbing};
use crate::encoding::{response_coding, Coding, Decoder};
use crate::policy::RequestSubstitution;
use crate::pool::ReturnSlot;
use crate::refusal::Refusal;
use crate::rewrite::scrub_response_headers;
use crate::scrubber::ScrubTable;
use crate::transform::{Passthrough, TransformedBody};

/// Passes a response body through, handing its connection back to the pool when it ends.
fn pooled(incoming: Incoming, slot: Option<ReturnSlot>) -> ProxyBody {
    let body = incoming_body(incoming);
    match slot {
        Some(slot) => slot.attach(body),
        None => body,
    }
}

/// The response for the sandbox.
pub(super) async fn finish(
    forwarding: &Forwarding<'_>,
    method: &http::Method,
    response: Response<Incoming>,
    table: Option<ScrubTable>,
    slot: Option<ReturnSlot>,
) -> Result<Response<ProxyBody>, Refusal> {
    let shared = forwarding.shared();
    let limits = shared.limiter.limits();
    let (mut parts, incoming) = response.into_parts();
    if let Some(coding) = crate::encoding::unsupported_transfer_coding(&parts.headers) {
        return Err(Refusal::upstream_failure(
            &forwarding.target.host,
            &format!(
                "it used transfer-coding {coding:?}, which the proxy does not relay (only chunked)"
            ),
        ));
    }
    parts.version = Version::default();
    parts.extensions.remove::<hyper::ext::ReasonPhrase>();
    scrub_response_headers(&mut parts.headers, table.as_ref(), false);
    let bodiless = method == http::Method::HEAD
        || parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    let Some(table) = table.filter(|_| !bodiless) else {
        let body = TransformedBody::new(
            pooled(incoming, slot),
            Passthrough,
            limits.body_idle_timeout,
            None,
        );
        return Ok(Response::from_parts(parts, body.boxed()));
    };
    let coding = response_coding(&parts.headers)
        .map_err(|reason| Refusal::unscrubbable(&forwarding.target.host, &reason))?;
    let flush = Some(shared.scrub_flush_after);
    if coding != Coding::Identity {
        parts.headers.remove(header::CONTENT_ENCODING);
        parts.headers.remove(header::CONTENT_LENGTH);
        let scrubbing = Scrubbing::new(
            table,
            Decoder::for_coding(coding),
            Arc::clone(&shared.metrics),
        );
        let body = TransformedBody::new(
            pooled(incoming, slot),
            scrubbing,
            limits.body_idle_timeout,
            flush,
        );
        return Ok(Response::from_parts(parts, body.boxed()));
    }
    let announced_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let permit = announced_length
        .filter(|length| *length <= shared.max_buffered_body as u64)
        .and_then(|length| {
            shared
                .limiter
                .reserve_buffer(forwarding.connection.source_ip, length as usize)
        });
    let Some(_permit) = permit else {
        parts.headers.remove(header::CONTENT_LENGTH);
        let scrubbing = Scrubbing::new(table, None, Arc::clone(&shared.metrics));
        let body = TransformedBody::new(
            pooled(incoming, slot),
            scrubbing,
            limits.body_idle_timeout,
            flush,
        );
        return Ok(Response::from_parts(parts, body.boxed()));
    };
    let collect = Limited::new(incoming, shared.max_buffered_body).collect();
    let collected = match tokio::time::timeout(limits.body_idle_timeout, collect).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) => {
            return Err(Refusal::upstream_failure(
                &forwarding.target.host,
                &format!("reading the response body failed: {error}"),
            ))
        }
        Err(_) => {
            shared.metrics.timed_out();
            return Err(Refusal::upstream_failure(
                &forwarding.target.host,
                "the response body went silent",
            ));
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
    Ok(Response::from_parts(parts, full_body(body)))
}

/// A `101` answer to a WebSocket upgrade: checked (no extension may have been negotiated — the
/// proxy strips the offer, and a compressed frame could not be scrubbed), then both upgraded
/// connections are handed to the frame relay. Any other answer passes as a normal response.
pub(super) fn websocket(
    forwarding: &Forwarding<'_>,
    mut response: Response<Incoming>,
    downstream: hyper::upgrade::OnUpgrade,
    resolver: RequestSubstitution,
    table: Option<ScrubTable>,
    ledger: Arc<RequestLedger>,
) -> Result<Response<ProxyBody>, Refusal> {
    let shared = forwarding.shared();
    let host = &forwarding.target.host;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (mut parts, incoming) = response.into_parts();
        parts.extensions.remove::<hyper::ext::ReasonPhrase>();
        scrub_response_headers(&mut parts.headers, table.as_ref(), false);
        let mut scrubbing_body = incoming_body(incoming);
        if let Some(table) = table {
            parts.headers.remove(header::CONTENT_LENGTH);
            let scrubbing = Scrubbing::new(table, None, Arc::clone(&shared.metrics));
            scrubbing_body = TransformedBody::new(
                scrubbing_body,
                scrubbing,
                shared.limiter.limits().body_idle_timeout,
                Some(shared.scrub_flush_after),
            )
            .boxed();
        }
        return Ok(Response::from_parts(parts, scrubbing_body));
    }
    if response
        .headers()
        .contains_key(header::SEC_WEBSOCKET_EXTENSIONS)
    {
        return Err(Refusal::unscrubbable(
            host,
            "it negotiated a WebSocket extension the proxy did not offer (compressed frames cannot be scrubbed)",
        ));
    }
    if !crate::rewrite::is_websocket_upgrade(response.headers()) {
        return Err(Refusal::unscrubbable(
            host,
            "it switched to a protocol other than WebSocket",
        ));
    }
    let upstream = hyper::upgrade::on(&mut response);
    let header_table = table.clone();
    let relay = crate::websocket::Relay {
        resolver,
        table,
        ledger,
        metrics: Arc::clone(&shared.metrics),
        idle_timeout: shared.limiter.limits().websocket_idle_timeout,
        host: host.clone(),
    };
    tokio::spawn(relay.run(downstream, upstream));
    let (mut parts, _) = response.into_parts();
    parts.extensions.remove::<hyper::ext::ReasonPhrase>();
    scrub_response_headers(&mut parts.headers, header_table.as_ref(), true);
    Ok(Response::from_parts(parts, crate::body::empty_body()))
}
