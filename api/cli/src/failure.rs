//! How `oc` fails: one message and one exit code per failure, chosen from the API's status, with
//! a hint saying what to do next. Exit codes: 0 ok, 1 failure, 2 bad usage or input, 3 missing or
//! wrong API key, 4 not found, 5 conflict (`oc exec` alone exits with the command's own code).
//! A failure message must never carry a secret value or an API key: it is built from the API's
//! error sentence, its code, and names the user typed.

use serde_json::Value;

use super::client::ApiResponse;
use super::connection::KeySource;

pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_AUTH: i32 = 3;
pub const EXIT_NOT_FOUND: i32 = 4;
pub const EXIT_CONFLICT: i32 = 5;

/// A command's failure: what to print after `error: ` and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub code: i32,
}

impl Failure {
    pub(crate) fn new(message: impl Into<String>, code: i32) -> Self {
        Self {
            message: message.into(),
            code,
        }
    }

    /// Bad input caught before anything was sent.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(message, EXIT_USAGE)
    }
}

/// What a refusal of this command should suggest: where to look up valid names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hints<'a> {
    /// The command that lists what a 404 could not find (e.g. "oc sandbox list").
    pub list_with: &'a str,
    /// Where the key came from, to say which one was refused.
    pub key_source: &'a KeySource,
}

/// The body when the status is one of `ok`, else a [`Failure`] that explains the refusal.
pub(crate) fn expect(
    response: ApiResponse,
    ok: &[u16],
    hints: Hints<'_>,
) -> Result<Value, Failure> {
    if ok.contains(&response.status) {
        return Ok(response.body);
    }
    let sentence = response.body["error"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("the API answered HTTP {}", response.status));
    let code = response.body["code"].as_str().unwrap_or("unknown");
    let (exit, hint) = match response.status {
        400 | 413 | 422 => (EXIT_USAGE, String::new()),
        401 => (EXIT_AUTH, format!("; {}", missing_key_hint())),
        403 => (
            EXIT_AUTH,
            format!(
                "; the key was refused (wrong or revoked): {}",
                hints.key_source.describe()
            ),
        ),
        404 => (EXIT_NOT_FOUND, format!("; see `{}`", hints.list_with)),
        409 => (EXIT_CONFLICT, String::new()),
        503 => (
            EXIT_FAILURE,
            "; a platform dependency (database, bus or worker) is down: retry, or check the output of `osbd up`".to_owned(),
        ),
        _ => (EXIT_FAILURE, String::new()),
    };
    Err(Failure::new(format!("{sentence} ({code}){hint}"), exit))
}

/// What to do when no key is configured.
pub(crate) fn missing_key_hint() -> &'static str {
    "set OPENSANDBOX_API_KEY or run `osbd up` to write ~/.config/opensandbox/config.toml"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(status: u16) -> Failure {
        let source = KeySource::Env;
        let response = ApiResponse {
            status,
            body: json!({"error": "sandbox sbx_1 not found", "code": "not_found"}),
            next_cursor: None,
        };
        let hints = Hints {
            list_with: "oc sandbox list",
            key_source: &source,
        };
        expect(response, &[200], hints).expect_err("refused")
    }

    #[test]
    fn statuses_map_to_exit_codes_with_hints() {
        assert_eq!(refused(404).code, EXIT_NOT_FOUND);
        assert!(refused(404).message.contains("`oc sandbox list`"));
        assert_eq!(refused(401).code, EXIT_AUTH);
        assert!(refused(401).message.contains("osbd up"));
        assert_eq!(refused(403).code, EXIT_AUTH);
        assert!(refused(403).message.contains("OPENSANDBOX_API_KEY"));
        assert_eq!(refused(409).code, EXIT_CONFLICT);
        assert_eq!(refused(422).code, EXIT_USAGE);
        assert_eq!(refused(503).code, EXIT_FAILURE);
    }
}
