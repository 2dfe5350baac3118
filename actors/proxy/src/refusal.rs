//! A refusal: why the proxy did not forward a request, as the sandbox sees it (status + JSON
//! `{error, code, secret?, host?}`) and as events report it. Messages name secrets and hosts and
//! say what to do next; they must never contain a secret value or a sealed token.

use bytes::Bytes;
use osb_proto::ErrorCode;
use serde::Serialize;

/// One refusal. Build it with the constructors so every message follows the same wording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Human sentence: what was wrong and what to do.
    #[serde(rename = "error")]
    pub message: String,
    pub code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Refusal {
    fn new(code: ErrorCode, message: String) -> Self {
        Self {
            message,
            code,
            secret: None,
            host: None,
        }
    }

    fn with_host(mut self, host: &str) -> Self {
        self.host = Some(host.to_owned());
        self
    }

    fn with_secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.to_owned());
        self
    }

    /// The refusal with every secret value (in any form the scrubber knows) taken out of its
    /// texts. Reasons may quote what an upstream sent (a coding, a TLS error naming a
    /// certificate); they go to the sandbox and into events, so they are scrubbed like a
    /// response.
    pub fn scrubbed(mut self, table: Option<&crate::scrubber::ScrubTable>) -> Self {
        let Some(table) = table else {
            return self;
        };
        for text in [
            Some(&mut self.message),
            self.host.as_mut(),
            self.secret.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(clean) = table.scrub_all(text.as_bytes()) {
                *text = String::from_utf8_lossy(&clean).into_owned();
            }
        }
        self
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        self.code.http_status()
    }

    /// The JSON body.
    pub fn body(&self) -> Bytes {
        // Serialising plain strings and an enum cannot fail; fall back to a fixed body anyway.
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_else(|_| {
                Bytes::from_static(b"{\"error\":\"refused\",\"code\":\"internal\"}")
            })
    }

    pub fn unknown_source(source: std::net::IpAddr) -> Self {
        Self::new(
            ErrorCode::UnknownSource,
            format!("traffic from {source} belongs to no sandbox session: only registered sandboxes may use this proxy"),
        )
    }

    pub fn host_not_allowed(host: &str, port: u16) -> Self {
        Self::new(
            ErrorCode::HostNotAllowed,
            format!("egress to {host}:{port} is not in this sandbox's allowlist: add the host to the project's egressAllowlist"),
        )
        .with_host(host)
    }

    pub fn secret_not_allowed(secret: &str, host: &str, port: u16) -> Self {
        Self::new(
            ErrorCode::SecretNotAllowedForHost,
            format!("secret {secret} may not be sent to {host}:{port}: add the host to the secret's allowedHosts"),
        )
        .with_secret(secret)
        .with_host(host)
    }

    pub fn unknown_token(host: &str) -> Self {
        Self::new(
            ErrorCode::UnknownToken,
            "the request carries a sealed token that does not belong to this sandbox (foreign, removed or mistyped): use the token from this sandbox's environment".to_owned(),
        )
        .with_host(host)
    }

    pub fn plaintext_secret(secret: &str, host: &str) -> Self {
        Self::new(
            ErrorCode::PlaintextSecret,
            format!("secret {secret} would travel over plain http to {host}: use https"),
        )
        .with_secret(secret)
        .with_host(host)
    }

    pub fn misdirected(target: &str, claimed: &str) -> Self {
        Self::new(
            ErrorCode::MisdirectedRequest,
            format!("the request names host {claimed} but the connection was opened to {target}: send it on a connection to {claimed}"),
        )
        .with_host(target)
    }

    pub fn forbidden_address(host: &str, reason: &str) -> Self {
        Self::new(
            ErrorCode::ForbiddenUpstreamAddress,
            format!("{host} resolves only to {reason} addresses, which the proxy never dials unless the operator allows it"),
        )
        .with_host(host)
    }

    pub fn body_too_large(length: u64, cap: usize) -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            format!("request body of {length} bytes exceeds the proxy's {cap}-byte rewrite buffer for bodies with Content-Length: send it with Transfer-Encoding: chunked or make it smaller"),
        )
    }

    pub fn upstream_failure(host: &str, reason: &str) -> Self {
        Self::new(
            ErrorCode::UpstreamFailure,
            format!("upstream {host} failed: {reason}"),
        )
        .with_host(host)
    }

    pub fn unscrubbable(host: &str, reason: &str) -> Self {
        Self::new(
            ErrorCode::UnscrubbableResponse,
            format!("the response of {host} was not forwarded: {reason}; the sandbox cannot receive what the proxy cannot scrub"),
        )
        .with_host(host)
    }

    pub fn rate_limited(reason: &str) -> Self {
        Self::new(
            ErrorCode::RateLimited,
            format!("the proxy refused this to protect other sandboxes: {reason}"),
        )
    }

    pub fn proxy_overloaded(reason: &str) -> Self {
        Self::new(
            ErrorCode::ProxyOverloaded,
            format!("the proxy is at capacity: {reason}; retry later"),
        )
    }

    pub fn request_timeout(what: &str) -> Self {
        Self::new(
            ErrorCode::RequestTimeout,
            format!("the proxy stopped waiting for {what}: send requests without long pauses"),
        )
    }

    pub fn bad_request(reason: &str) -> Self {
        Self::new(
            ErrorCode::InvalidInput,
            format!("the proxy cannot forward this request: {reason}"),
        )
    }

    pub fn internal(reason: &str) -> Self {
        Self::new(
            ErrorCode::Internal,
            format!("the proxy failed internally: {reason}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_follows_the_contract() {
        let refusal = Refusal::secret_not_allowed("GITHUB_TOKEN", "evil.test", 443);
        let json: serde_json::Value = serde_json::from_slice(&refusal.body()).unwrap();
        assert_eq!(json["code"], "secret_not_allowed_for_host");
        assert_eq!(json["secret"], "GITHUB_TOKEN");
        assert_eq!(json["host"], "evil.test");
        assert!(json["error"].as_str().unwrap().contains("allowedHosts"));
        assert_eq!(refusal.status(), 403);
        let bare = Refusal::internal("x");
        let json: serde_json::Value = serde_json::from_slice(&bare.body()).unwrap();
        assert!(json.get("secret").is_none());
    }
}
