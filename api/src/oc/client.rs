//! A small blocking HTTP client for the REST API (ureq, rustls with ring). It returns the
//! status and parsed JSON body; refusals keep the API's `{error, code}` for the caller to show.

use std::time::Duration;

use serde_json::Value;

/// Where the API is (default `http://127.0.0.1:8080`).
pub const API_URL_ENV: &str = "OPENSANDBOX_API_URL";
/// The API key (never taken from an argument).
pub const API_KEY_ENV: &str = "OPENSANDBOX_API_KEY";
/// The default API URL (`osbd gateway`'s default listen address).
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8080";

/// A response: status and JSON body (`Null` when empty).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

/// Why the API could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the API at {url}: {reason} (is `osbd gateway` running? set {API_URL_ENV} to point elsewhere)")]
pub struct Unreachable {
    pub url: String,
    pub reason: String,
}

/// The client.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    key: Option<String>,
    agent: ureq::Agent,
}

impl ApiClient {
    pub fn new(base: &str, key: Option<String>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            key,
            agent,
        }
    }

    /// Sends `method path` with an optional JSON body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ApiResponse, Unreachable> {
        let url = format!("{}/api{path}", self.base);
        let unreachable = |error: ureq::Error| Unreachable {
            url: self.base.clone(),
            reason: error.to_string(),
        };
        let mut response = match (method, body) {
            ("GET", _) => self.with_key(self.agent.get(&url)).call(),
            ("DELETE", _) => self.with_key(self.agent.delete(&url)).call(),
            ("POST", Some(body)) => self
                .with_key(self.agent.post(&url))
                .content_type("application/json")
                .send(body.to_string()),
            ("PATCH", Some(body)) => self
                .with_key(self.agent.patch(&url))
                .content_type("application/json")
                .send(body.to_string()),
            ("PUT", Some(body)) => self
                .with_key(self.agent.put(&url))
                .content_type("application/json")
                .send(body.to_string()),
            _ => self.with_key(self.agent.post(&url)).send_empty(),
        }
        .map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(unreachable)?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(ApiResponse { status, body })
    }

    fn with_key<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.key {
            Some(key) => request.header("X-API-Key", key),
            None => request,
        }
    }
}
