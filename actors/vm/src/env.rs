//! Composition of a sandbox's environment (DESIGN §4), as a pure function so every rule is unit
//! tested: base variables, then the proxy variables, then the CA variables, then the sealed
//! tokens (`NAME=osb_sealed_…`), then the user's plain envs, which win on any name clash. Exec
//! requests may add their own variables on top. This module must never see a secret value: its
//! inputs are names and sealed tokens only.

use std::collections::BTreeMap;

use crate::spec::SealedEnv;

/// Variables that replace a client's trust store: they get the full bundle.
pub const CA_BUNDLE_VARIABLES: [&str; 4] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
];
/// Variables that add certificates to a client's built-in store: they get the proxy CA alone.
pub const CA_EXTRA_VARIABLES: [&str; 2] = ["NODE_EXTRA_CA_CERTS", "DENO_CERT"];

/// Hosts that never go through the explicit proxy.
pub const NO_PROXY_VALUE: &str = "localhost,127.0.0.1,::1";

/// The worker-provided parts of the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvContext {
    /// The explicit proxy URL, e.g. `http://100.96.0.5:3128`.
    pub proxy_url: String,
    /// Path (inside the sandbox) of the full trust bundle (system roots plus the proxy CA),
    /// for variables that replace the default store.
    pub ca_bundle_path: String,
    /// Path (inside the sandbox) of the proxy CA alone, for variables that add to the store.
    pub ca_cert_path: String,
    /// Home and default working directory.
    pub home: String,
    /// The sandbox user's name.
    pub user: String,
}

/// The sandbox environment, ordered by name. User envs win over everything else.
pub fn compose_env(
    context: &EnvContext,
    sealed_envs: &[SealedEnv],
    user_envs: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut set = |name: &str, value: &str| {
        env.insert(name.to_owned(), value.to_owned());
    };
    set(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    set("HOME", &context.home);
    set("USER", &context.user);
    set("LANG", "C.UTF-8");
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        set(name, &context.proxy_url);
    }
    set("NO_PROXY", NO_PROXY_VALUE);
    set("no_proxy", NO_PROXY_VALUE);
    for name in CA_BUNDLE_VARIABLES {
        set(name, &context.ca_bundle_path);
    }
    for name in CA_EXTRA_VARIABLES {
        set(name, &context.ca_cert_path);
    }
    for sealed in sealed_envs {
        set(&sealed.name, sealed.token.as_str());
    }
    for (name, value) in user_envs {
        set(name, value);
    }
    env
}

/// Adds an exec request's own variables on top of the sandbox environment.
pub fn overlay_exec_env(
    base: &BTreeMap<String, String>,
    exec_env: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut merged = base.clone();
    merged.extend(exec_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

#[cfg(test)]
mod tests {
    use osb_proto::{SealedToken, SEALED_TOKEN_PREFIX};

    use super::*;

    fn context() -> EnvContext {
        EnvContext {
            proxy_url: "http://100.96.0.5:3128".into(),
            ca_bundle_path: "/etc/ssl/certs/ca-certificates.crt".into(),
            ca_cert_path: "/etc/ssl/certs/osb-proxy-ca.pem".into(),
            home: "/workspace".into(),
            user: "sandbox".into(),
        }
    }

    fn sealed(name: &str, byte: u8) -> SealedEnv {
        SealedEnv {
            name: name.into(),
            token: SealedToken::from_random_bytes([byte; 16]),
        }
    }

    #[test]
    fn secrets_appear_only_as_sealed_tokens() {
        let env = compose_env(&context(), &[sealed("OPENAI_API_KEY", 7)], &BTreeMap::new());
        let value = env.get("OPENAI_API_KEY").cloned().unwrap();
        assert!(value.starts_with(SEALED_TOKEN_PREFIX));
        assert_eq!(value.len(), 43);
    }

    #[test]
    fn user_envs_are_plain_and_win_on_a_clash() {
        let mut user = BTreeMap::new();
        user.insert("OPENAI_API_KEY".to_owned(), "plain".to_owned());
        user.insert("MODE".to_owned(), "dev".to_owned());
        let env = compose_env(&context(), &[sealed("OPENAI_API_KEY", 7)], &user);
        assert_eq!(env.get("OPENAI_API_KEY").map(String::as_str), Some("plain"));
        assert_eq!(env.get("MODE").map(String::as_str), Some("dev"));
    }

    #[test]
    fn proxy_variables_come_in_both_cases_with_no_proxy() {
        let env = compose_env(&context(), &[], &BTreeMap::new());
        for name in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            assert_eq!(
                env.get(name).map(String::as_str),
                Some("http://100.96.0.5:3128")
            );
        }
        assert_eq!(
            env.get("NO_PROXY").map(String::as_str),
            Some(NO_PROXY_VALUE)
        );
        assert_eq!(
            env.get("no_proxy").map(String::as_str),
            Some(NO_PROXY_VALUE)
        );
    }

    #[test]
    fn every_ca_variable_points_at_the_bundle() {
        let env = compose_env(&context(), &[], &BTreeMap::new());
        for name in CA_BUNDLE_VARIABLES {
            assert_eq!(
                env.get(name).map(String::as_str),
                Some("/etc/ssl/certs/ca-certificates.crt"),
                "{name}"
            );
        }
        for name in CA_EXTRA_VARIABLES {
            assert_eq!(
                env.get(name).map(String::as_str),
                Some("/etc/ssl/certs/osb-proxy-ca.pem"),
                "{name}"
            );
        }
    }

    #[test]
    fn base_variables_are_present_and_overridable() {
        let mut user = BTreeMap::new();
        user.insert("PATH".to_owned(), "/opt/bin".to_owned());
        let env = compose_env(&context(), &[], &user);
        assert_eq!(env.get("PATH").map(String::as_str), Some("/opt/bin"));
        assert_eq!(env.get("HOME").map(String::as_str), Some("/workspace"));
    }

    #[test]
    fn exec_env_is_layered_on_top() {
        let env = compose_env(&context(), &[sealed("TOKEN", 1)], &BTreeMap::new());
        let mut extra = BTreeMap::new();
        extra.insert("EXTRA".to_owned(), "1".to_owned());
        let merged = overlay_exec_env(&env, &extra);
        assert_eq!(merged.get("EXTRA").map(String::as_str), Some("1"));
        assert_eq!(merged.get("TOKEN"), env.get("TOKEN"));
    }
}
