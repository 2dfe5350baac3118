//! One upstream exchange: take a connection from the sandbox's pool (or dial a dedicated one for
//! an upgrade), shape the request for the protocol that connection speaks, send it, and — when a
//! reused connection turns out to have been closed under the request — retry once on a newly
//! dialled connection. The retry happens only when hyper hands the request back unsent, or when
//! the request is idempotent and has no body (RFC 9110 §9.2.2); a request whose body may have
//! been partly written is never replayed. Everything else is a 502 with the reason.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, Version};
use hyper::body::Incoming;

use crate::body::{empty_body, ProxyBody};
use crate::pool::{PoolKey, UpstreamPools};
use crate::refusal::Refusal;
use crate::upstream::{UpstreamConnector, UpstreamSender};

/// The request line of the upstream request, independent of the upstream's protocol.
#[derive(Debug)]
pub struct RequestShape {
    pub method: Method,
    /// `host[:port]` as the client named it (or as the target implies).
    pub authority: String,
    /// Path and query with tokens substituted (wiped when dropped).
    pub path_and_query: zeroize::Zeroizing<String>,
}

impl RequestShape {
    /// The request for an upstream that speaks HTTP/2 (absolute URI, no `Host`) or HTTP/1.1
    /// (origin-form, `Host`).
    fn build(
        &self,
        key: &PoolKey,
        http2: bool,
        mut headers: HeaderMap,
        body: ProxyBody,
    ) -> Result<Request<ProxyBody>, Refusal> {
        let mut builder = Request::builder().method(self.method.clone());
        // The URI may hold substituted values: it is built over a buffer wiped when the request
        // is done.
        let mut text = zeroize::Zeroizing::new(Vec::with_capacity(self.path_and_query.len() + 64));
        if http2 {
            headers.remove(header::HOST);
            text.extend_from_slice(key.target().scheme.as_str().as_bytes());
            text.extend_from_slice(b"://");
            text.extend_from_slice(self.authority.as_bytes());
            builder = builder.version(Version::HTTP_2);
        } else {
            let host = HeaderValue::from_str(&self.authority)
                .map_err(|_| Refusal::bad_request("the Host header is not valid"))?;
            headers.insert(header::HOST, host);
            builder = builder.version(Version::HTTP_11);
        }
        text.extend_from_slice(self.path_and_query.as_bytes());
        let uri = http::Uri::from_maybe_shared(crate::wiped::wiped_bytes(text))
            .map_err(|_| Refusal::bad_request("the request target is not valid"))?;
        builder = builder.uri(uri);
        let mut request = builder.body(body).map_err(|error| {
            Refusal::bad_request(&format!("the request cannot be rebuilt: {error}"))
        })?;
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// How an exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    /// No connection could be had (forbidden address, dial or TLS failure, bad request head).
    Refused(Refusal),
    /// The request failed on the connection.
    Failed(hyper::Error),
}

/// A response and the sender that carried it (to return to the pool once the body has ended).
#[derive(Debug)]
pub struct Exchanged {
    pub response: Response<Incoming>,
    pub sender: UpstreamSender,
}

/// What the exchange sends.
#[derive(Debug)]
pub struct Outgoing {
    pub shape: RequestShape,
    pub headers: HeaderMap,
    pub body: ProxyBody,
    /// The request has no body at all (so an idempotent one may be replayed).
    pub bodiless: bool,
    /// A protocol upgrade: a dedicated HTTP/1.1 connection that never returns to the pool.
    pub upgrade: bool,
}

/// Sends `outgoing` toward `key.target`.
pub async fn exchange(
    pools: &UpstreamPools,
    connector: &UpstreamConnector,
    key: &PoolKey,
    outgoing: Outgoing,
) -> Result<Exchanged, ExchangeError> {
    let (mut sender, reused) = if outgoing.upgrade {
        let sender = connector
            .connect(key.target(), false)
            .await
            .map_err(ExchangeError::Refused)?;
        (sender, false)
    } else {
        let checkout = pools
            .acquire(connector, key)
            .await
            .map_err(ExchangeError::Refused)?;
        (checkout.sender, checkout.reused)
    };
    let replayable = reused && outgoing.bodiless && outgoing.shape.method.is_idempotent();
    let replay_headers = replayable.then(|| outgoing.headers.clone());
    let request = outgoing
        .shape
        .build(key, sender.is_http2(), outgoing.headers, outgoing.body)
        .map_err(ExchangeError::Refused)?;
    let failure = match sender.try_send(request).await {
        Ok(response) => return Ok(Exchanged { response, sender }),
        Err(failure) => failure,
    };
    if !reused {
        return Err(ExchangeError::Failed(failure.error));
    }
    let connection_lost = failure.is_connection_lost();
    let (headers, body) = match (failure.unsent, replay_headers) {
        (Some(unsent), _) => {
            let (parts, body) = unsent.into_parts();
            (parts.headers, body)
        }
        (None, Some(headers)) if connection_lost => (headers, empty_body()),
        (None, _) => return Err(ExchangeError::Failed(failure.error)),
    };
    tracing::debug!(
        host = %key.target().host,
        error = %failure.error,
        "reused upstream connection was lost; retrying on a new one"
    );
    let mut fresh = pools
        .dial(connector, key)
        .await
        .map_err(ExchangeError::Refused)?;
    let request = outgoing
        .shape
        .build(key, fresh.is_http2(), headers, body)
        .map_err(ExchangeError::Refused)?;
    match fresh.try_send(request).await {
        Ok(response) => Ok(Exchanged {
            response,
            sender: fresh,
        }),
        Err(failure) => Err(ExchangeError::Failed(failure.error)),
    }
}
