//! What each API key scope may do (ADR 0026), decided from the method and path alone before any
//! handler runs:
//! * `admin` — everything, including `/api/keys` (the key lifecycle);
//! * `sandboxes` — sandboxes, their checkpoints, exec and snapshots (any method), and reading
//!   events, workers and sagas; never projects, secrets or keys;
//! * `read` — every `GET` except `/api/keys`; never a change.
//!
//! This module must never allow by default: a route class it does not know is admin-only.

use std::fmt;
use std::str::FromStr;

use actix_web::http::Method;

/// A key's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyScope {
    Admin,
    Sandboxes,
    Read,
}

/// Every scope, in the order messages list them.
pub const KEY_SCOPES: [KeyScope; 3] = [KeyScope::Admin, KeyScope::Sandboxes, KeyScope::Read];

impl KeyScope {
    /// The stored and wire form.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyScope::Admin => "admin",
            KeyScope::Sandboxes => "sandboxes",
            KeyScope::Read => "read",
        }
    }

    /// Whether a key of this scope may call `method path` (a path under `/api`).
    pub fn allows(self, method: &Method, path: &str) -> bool {
        let class = RouteClass::of(path);
        match self {
            KeyScope::Admin => true,
            KeyScope::Read => *method == Method::GET && class != RouteClass::Keys,
            KeyScope::Sandboxes => match class {
                RouteClass::Sandboxes => true,
                RouteClass::Observe => *method == Method::GET,
                RouteClass::Projects | RouteClass::Keys | RouteClass::Other => false,
            },
        }
    }
}

impl fmt::Display for KeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name that is not one of [`KEY_SCOPES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope {given:?} is not known; valid scopes: admin, sandboxes, read")]
pub struct UnknownScope {
    pub given: String,
}

impl FromStr for KeyScope {
    type Err = UnknownScope;

    fn from_str(text: &str) -> Result<Self, UnknownScope> {
        KEY_SCOPES
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| UnknownScope {
                given: text.chars().take(32).collect(),
            })
    }
}

/// The route classes scopes are decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// `/api/keys…`
    Keys,
    /// `/api/projects…` (with their secrets)
    Projects,
    /// `/api/sandboxes…`, `/api/snapshots…`
    Sandboxes,
    /// `/api/events`, `/api/workers`, `/api/sagas`, `/api/openapi.json`
    Observe,
    /// anything else (unknown routes: admin-only, then 404)
    Other,
}

impl RouteClass {
    /// The class of a request path (with or without the `/api` prefix).
    pub fn of(path: &str) -> Self {
        let path = path.strip_prefix("/api").unwrap_or(path);
        let first = path
            .trim_start_matches('/')
            .split(['/', '?'])
            .next()
            .unwrap_or_default();
        match first {
            "keys" => RouteClass::Keys,
            "projects" => RouteClass::Projects,
            "sandboxes" | "snapshots" => RouteClass::Sandboxes,
            "events" | "workers" | "sagas" | "openapi.json" => RouteClass::Observe,
            _ => RouteClass::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_unknown_ones_list_the_valid_names() {
        for scope in KEY_SCOPES {
            assert_eq!(scope.as_str().parse::<KeyScope>().unwrap(), scope);
        }
        let error = "root".parse::<KeyScope>().unwrap_err();
        assert!(error.to_string().contains("admin, sandboxes, read"));
    }

    #[test]
    fn route_classes_follow_the_first_segment() {
        assert_eq!(RouteClass::of("/api/keys/x/rotate"), RouteClass::Keys);
        assert_eq!(
            RouteClass::of("/api/projects/p/secrets/A"),
            RouteClass::Projects
        );
        assert_eq!(
            RouteClass::of("/api/sandboxes/from-checkpoint/c"),
            RouteClass::Sandboxes
        );
        assert_eq!(RouteClass::of("/api/events?since=1"), RouteClass::Observe);
        assert_eq!(RouteClass::of("/api/keysmith"), RouteClass::Other);
        assert_eq!(RouteClass::of("/api/projectsX"), RouteClass::Other);
    }
}
