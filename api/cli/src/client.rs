//! A small blocking HTTP client for the REST API (ureq, rustls with ring). It returns the status
//! and parsed JSON body, with a per-call timeout (sandbox creation can take tens of seconds), and
//! opens the server-sent event stream. Refusals keep the API's `{error, code}` for the caller to
//! explain. It must never log or print the API key it sends.

use std::io::Read;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Where the API is (default `http://127.0.0.1:8080`).
pub const API_URL_ENV: &str = "OPENSANDBOX_API_URL";
/// The API key (never taken from an argument).
pub const API_KEY_ENV: &str = "OPENSANDBOX_API_KEY";
/// The default API URL (`osbd up`'s default listen address).
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8080";

/// How long a quick call (list, get, delete, secrets) may take.
pub const QUICK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a call that boots, restores or snapshots a sandbox may take.
pub const LONG_TIMEOUT: Duration = Duration::from_secs(300);
/// How long connecting may take, whatever the call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A response: status and JSON body (`Null` when empty), and the `X-Next-Cursor` of a list
/// page that has a next one.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    pub next_cursor: Option<String>,
}

/// Why the call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum Unreachable {
    #[error("cannot reach the API at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the API at {url} did not answer within {} s; the operation may still complete on the server", seconds)]
    TimedOut { url: String, seconds: u64 },
}

/// Options of one call.
#[derive(Debug, Clone)]
pub struct CallOptions {
    pub timeout: Duration,
    pub idempotency_key: Option<String>,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            timeout: QUICK_TIMEOUT,
            idempotency_key: None,
        }
    }
}

impl CallOptions {
    /// Options for a call that may take as long as `timeout`.
    pub fn long(timeout: Duration) -> Self {
        Self {
            timeout,
            idempotency_key: None,
        }
    }
}

/// The client.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    key: Option<SecretString>,
    agent: ureq::Agent,
}

impl ApiClient {
    pub fn new(base: &str, key: Option<SecretString>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            key,
            agent,
        }
    }

    /// The base URL, as given.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method path` with an optional JSON body and the quick timeout.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ApiResponse, Unreachable> {
        self.call_with(method, path, body, &CallOptions::default())
    }

    /// Sends `method path` with an optional JSON body and the given options.
    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        options: &CallOptions,
    ) -> Result<ApiResponse, Unreachable> {
        let url = format!("{}/api{path}", self.base);
        let failed = |error: ureq::Error| self.unreachable(error, options.timeout);
        let prepare = |request: ureq::RequestBuilder<ureq::typestate::WithBody>| {
            let request = self.with_key(request).header("Accept", "application/json");
            let request = match &options.idempotency_key {
                Some(key) => request.header("Idempotency-Key", key),
                None => request,
            };
            request
                .config()
                .timeout_global(Some(options.timeout))
                .build()
        };
        let prepare_bodiless = |request: ureq::RequestBuilder<ureq::typestate::WithoutBody>| {
            self.with_key(request)
                .header("Accept", "application/json")
                .config()
                .timeout_global(Some(options.timeout))
                .build()
        };
        let sent = match (method, body) {
            ("GET", _) => prepare_bodiless(self.agent.get(&url)).call(),
            ("DELETE", _) => prepare_bodiless(self.agent.delete(&url)).call(),
            (method, Some(body)) => {
                let request = match method {
                    "PATCH" => self.agent.patch(&url),
                    "PUT" => self.agent.put(&url),
                    _ => self.agent.post(&url),
                };
                prepare(request)
                    .content_type("application/json")
                    .send(body.to_string())
            }
            (_, None) => prepare(self.agent.post(&url)).send_empty(),
        };
        let mut response = sent.map_err(failed)?;
        let status = response.status().as_u16();
        let next_cursor = response
            .headers()
            .get("x-next-cursor")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(failed)?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(ApiResponse {
            status,
            body,
            next_cursor,
        })
    }

    /// Opens `GET path` as a server-sent event stream: on 200 the body reader, otherwise the
    /// refusal as an [`ApiResponse`].
    pub fn stream(
        &self,
        path: &str,
    ) -> Result<Result<Box<dyn Read + Send>, ApiResponse>, Unreachable> {
        let url = format!("{}/api{path}", self.base);
        let mut response = self
            .with_key(self.agent.get(&url))
            .header("Accept", "text/event-stream")
            .call()
            .map_err(|error| self.unreachable(error, CONNECT_TIMEOUT))?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(Ok(Box::new(response.into_body().into_reader())));
        }
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Err(ApiResponse {
            status,
            body,
            next_cursor: None,
        }))
    }

    /// Sends `POST path` with a JSON body and, on 200, hands back the body reader (newline-
    /// delimited JSON as the server produces it); otherwise the refusal as an [`ApiResponse`].
    pub fn stream_post(
        &self,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Result<Box<dyn Read + Send>, ApiResponse>, Unreachable> {
        let url = format!("{}/api{path}", self.base);
        let mut response = self
            .with_key(self.agent.post(&url))
            .header("Accept", "application/x-ndjson")
            .config()
            .timeout_global(Some(timeout))
            .build()
            .content_type("application/json")
            .send(body.to_string())
            .map_err(|error| self.unreachable(error, timeout))?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(Ok(Box::new(response.into_body().into_reader())));
        }
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Err(ApiResponse {
            status,
            body,
            next_cursor: None,
        }))
    }

    fn unreachable(&self, error: ureq::Error, timeout: Duration) -> Unreachable {
        match error {
            ureq::Error::Timeout(ureq::Timeout::Connect) => Unreachable::Connect {
                url: self.base.clone(),
                reason: format!("connecting took more than {} s", CONNECT_TIMEOUT.as_secs()),
            },
            ureq::Error::Timeout(_) => Unreachable::TimedOut {
                url: self.base.clone(),
                seconds: timeout.as_secs(),
            },
            other => Unreachable::Connect {
                url: self.base.clone(),
                reason: other.to_string(),
            },
        }
    }

    fn with_key<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.key {
            Some(key) => request.header("X-API-Key", key.expose_secret()),
            None => request,
        }
    }
}
