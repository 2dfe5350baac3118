//! Where `oc` connects and with which key. The URL comes from `--api-url`, else
//! `OPENSANDBOX_API_URL`, else the config file's `api_url`, else `http://127.0.0.1:8080`; the key
//! from `OPENSANDBOX_API_KEY`, else the config file's `api_key` (never from an argument, which
//! would land in shell history and process listings). Each value remembers its source so errors
//! can say which one to fix. This module must never print the key, only where it came from.

use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::client::{API_KEY_ENV, API_URL_ENV, DEFAULT_API_URL};
use super::config::{CliConfig, ConfigError, CONFIG_ENV};
use super::failure::{Failure, EXIT_FAILURE, EXIT_USAGE};

/// Where the API URL came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlSource {
    Flag,
    Env,
    File(PathBuf),
    Default,
}

/// Where the API key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    Env,
    File(PathBuf),
    Missing,
}

impl KeySource {
    /// A fragment naming the key's origin, for refusals.
    pub(crate) fn describe(&self) -> String {
        match self {
            KeySource::Env => format!("check the key in {API_KEY_ENV}"),
            KeySource::File(path) => format!("check api_key in {}", path.display()),
            KeySource::Missing => format!("no key was sent: set {API_KEY_ENV}"),
        }
    }
}

impl UrlSource {
    /// How to point `oc` elsewhere, given where the URL came from.
    pub(crate) fn how_to_change(&self) -> String {
        match self {
            UrlSource::Flag => "check --api-url".to_owned(),
            UrlSource::Env => format!("check {API_URL_ENV}"),
            UrlSource::File(path) => format!("check api_url in {}", path.display()),
            UrlSource::Default => format!(
                "it is the default; set {API_URL_ENV}, pass --api-url, or set api_url in the config file"
            ),
        }
    }
}

/// The resolved connection settings.
#[derive(Debug)]
pub(crate) struct Connection {
    pub url: String,
    pub url_source: UrlSource,
    pub key: Option<SecretString>,
    pub key_source: KeySource,
}

/// Resolves URL and key from the flag, the environment (`env`) and the config file; warns on
/// `warnings` when the file holding a key is readable by other users.
pub(crate) fn resolve(
    flag_url: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut dyn Write,
) -> Result<Connection, Failure> {
    let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    let path = CliConfig::path_from(|name| set(name).map(PathBuf::from));
    let file = match &path {
        Some(path) => load(path)?,
        None => None,
    };
    let file = file.unwrap_or_default();
    let from_file = |value: Option<String>| {
        value
            .filter(|value| !value.trim().is_empty())
            .zip(path.clone())
    };
    let (url, url_source) = match (flag_url, set(API_URL_ENV), from_file(file.api_url)) {
        (Some(flag), _, _) => (flag.to_owned(), UrlSource::Flag),
        (None, Some(env_url), _) => (env_url, UrlSource::Env),
        (None, None, Some((file_url, path))) => (file_url, UrlSource::File(path)),
        (None, None, None) => (DEFAULT_API_URL.to_owned(), UrlSource::Default),
    };
    let (key, key_source) = match (set(API_KEY_ENV), from_file(file.api_key)) {
        (Some(env_key), _) => (Some(SecretString::from(env_key)), KeySource::Env),
        (None, Some((file_key, path))) => {
            warn_if_exposed(&path, warnings);
            (Some(SecretString::from(file_key)), KeySource::File(path))
        }
        (None, None) => (None, KeySource::Missing),
    };
    Ok(Connection {
        url,
        url_source,
        key,
        key_source,
    })
}

fn load(path: &Path) -> Result<Option<CliConfig>, Failure> {
    CliConfig::load(path).map_err(|error| {
        let code = match error {
            ConfigError::Malformed { .. } => EXIT_USAGE,
            _ => EXIT_FAILURE,
        };
        Failure::new(
            format!("{error} (the path comes from {CONFIG_ENV}, XDG_CONFIG_HOME or HOME)"),
            code,
        )
    })
}

fn warn_if_exposed(path: &Path, warnings: &mut dyn Write) {
    if let Some(mode) = CliConfig::loose_permissions(path) {
        let _ = writeln!(
            warnings,
            "warning: {} holds an API key but its mode is {mode:03o} (readable by other users); run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    fn resolve_with(
        flag: Option<&str>,
        pairs: &[(&str, &str)],
    ) -> (Result<Connection, Failure>, String) {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        let mut warnings = Vec::new();
        let resolved = resolve(flag, &|name| env.get(name).cloned(), &mut warnings);
        (resolved, String::from_utf8_lossy(&warnings).into_owned())
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "api_url = \"http://file:1\"\napi_key = \"osb_file\"\n",
        )
        .expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let config = path.to_string_lossy().into_owned();

        let (resolved, warnings) = resolve_with(None, &[("OPENSANDBOX_CONFIG", &config)]);
        let resolved = resolved.expect("resolves");
        assert_eq!(resolved.url, "http://file:1");
        assert_eq!(resolved.url_source, UrlSource::File(path.clone()));
        assert_eq!(
            resolved
                .key
                .as_ref()
                .map(|key| key.expose_secret().to_owned()),
            Some("osb_file".to_owned())
        );
        assert_eq!(warnings, "");

        let (resolved, _) = resolve_with(
            None,
            &[
                ("OPENSANDBOX_CONFIG", &config),
                ("OPENSANDBOX_API_URL", "http://env:2"),
                ("OPENSANDBOX_API_KEY", "osb_env"),
            ],
        );
        let resolved = resolved.expect("resolves");
        assert_eq!(
            (resolved.url.as_str(), &resolved.key_source),
            ("http://env:2", &KeySource::Env)
        );

        let (resolved, _) = resolve_with(
            Some("http://flag:3"),
            &[
                ("OPENSANDBOX_CONFIG", &config),
                ("OPENSANDBOX_API_URL", "http://env:2"),
            ],
        );
        assert_eq!(resolved.expect("resolves").url, "http://flag:3");

        let (resolved, _) = resolve_with(None, &[]);
        let resolved = resolved.expect("resolves");
        assert_eq!(resolved.url, DEFAULT_API_URL);
        assert_eq!(resolved.key_source, KeySource::Missing);
    }

    #[test]
    fn a_readable_file_with_a_key_warns_and_a_broken_one_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "api_key = \"osb_file\"\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let config = path.to_string_lossy().into_owned();
        let (resolved, warnings) = resolve_with(None, &[("OPENSANDBOX_CONFIG", &config)]);
        assert!(resolved.is_ok());
        assert!(
            warnings.contains("chmod 600") && !warnings.contains("osb_file"),
            "{warnings}"
        );

        std::fs::write(&path, "api_key = \n").expect("write");
        let (resolved, _) = resolve_with(None, &[("OPENSANDBOX_CONFIG", &config)]);
        let failure = resolved.expect_err("malformed");
        assert_eq!(failure.code, EXIT_USAGE);
        assert!(
            failure.message.contains(&format!("{config}:1:")),
            "{}",
            failure.message
        );
    }
}
