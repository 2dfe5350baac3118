//! The `oc` configuration file: where it lives, how it is read, and how `osbd up` writes a fresh
//! one. The file is two TOML keys, `api_url` and `api_key`; it sits in
//! `$XDG_CONFIG_HOME/opensandbox/config.toml` (default `~/.config/opensandbox/config.toml`) unless
//! `OPENSANDBOX_CONFIG` names another path. This module must never overwrite an existing file,
//! never create one readable by anyone but its owner, and never print the key (its `Debug` hides
//! it, and its errors quote positions and keys, not values).

use std::fmt;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Environment variable naming the config file, overriding the default location.
pub const CONFIG_ENV: &str = "OPENSANDBOX_CONFIG";

/// The contents of `config.toml`. Both keys are optional; the environment and flags fill gaps.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliConfig {
    pub api_url: Option<String>,
    pub api_key: Option<String>,
}

impl fmt::Debug for CliConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CliConfig")
            .field("api_url", &self.api_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why the config file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}:{line}:{column}: {message}; the file holds `api_url = \"http://127.0.0.1:8080\"` and `api_key = \"osk_…\"` (fix it, or delete it and run `osbd up`)",
        path.display()
    )]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl CliConfig {
    /// The config file's path: `$OPENSANDBOX_CONFIG`, else
    /// `$XDG_CONFIG_HOME/opensandbox/config.toml`, else `$HOME/.config/opensandbox/config.toml`;
    /// `None` when none of them is set.
    pub fn default_path() -> Option<PathBuf> {
        Self::path_from(|name| std::env::var_os(name).map(PathBuf::from))
    }

    /// [`Self::default_path`] over an injected environment lookup.
    pub fn path_from(lookup: impl Fn(&str) -> Option<PathBuf>) -> Option<PathBuf> {
        let set = |name: &str| lookup(name).filter(|value| !value.as_os_str().is_empty());
        if let Some(explicit) = set(CONFIG_ENV) {
            return Some(explicit);
        }
        // The XDG spec says relative values are invalid and must be ignored.
        let config_home = set("XDG_CONFIG_HOME")
            .filter(|path| path.is_absolute())
            .or_else(|| set("HOME").map(|home| home.join(".config")))?;
        Some(config_home.join("opensandbox").join("config.toml"))
    }

    /// Reads `path`; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<CliConfig>, ConfigError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        Self::parse(path, &text).map(Some)
    }

    /// Parses the file's text; errors name `path` and the line and column at fault.
    pub fn parse(path: &Path, text: &str) -> Result<CliConfig, ConfigError> {
        toml::from_str(text).map_err(|error| {
            let offset = error.span().map(|span| span.start).unwrap_or(0);
            let (line, column) = line_and_column(text, offset);
            ConfigError::Malformed {
                path: path.to_owned(),
                line,
                column,
                message: error.message().trim().to_owned(),
            }
        })
    }

    /// Creates `path` holding `api_url` and `api_key`, with its missing parent directories
    /// (mode 0700) and the file itself mode 0600. Never overwrites: returns `Ok(false)` when the
    /// file already exists, `Ok(true)` when it wrote it. The file appears whole or not at all.
    pub fn write_new(path: &Path, api_url: &str, api_key: &str) -> Result<bool, ConfigError> {
        let write_error = |source| ConfigError::Write {
            path: path.to_owned(),
            source,
        };
        if fs::symlink_metadata(path).is_ok() {
            return Ok(false);
        }
        let parent = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(write_error)?;
        let staging = parent.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        let result = Self::stage_and_link(&staging, path, &render(api_url, api_key));
        let _ = fs::remove_file(&staging);
        result.map_err(write_error)
    }

    /// Writes the staging file (0600) and hard-links it into place: linking fails if the target
    /// exists, so two concurrent writers cannot clobber each other.
    fn stage_and_link(staging: &Path, target: &Path, contents: &str) -> std::io::Result<bool> {
        let _ = fs::remove_file(staging);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(staging)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        match fs::hard_link(staging, target) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// The file's permission bits when group or others may read or write it, else `None`.
    pub fn loose_permissions(path: &Path) -> Option<u32> {
        let mode = fs::metadata(path).ok()?.mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
}

/// The file's text. A JSON string literal is also a valid TOML basic string (same escapes, and
/// serde_json never emits `\/`), so the values are quoted by serde_json.
fn render(api_url: &str, api_key: &str) -> String {
    let quote = |text: &str| serde_json::Value::String(text.to_owned()).to_string();
    format!(
        "# Written by `osbd up` for the `oc` CLI; keep it private (mode 0600).\napi_url = {}\napi_key = {}\n",
        quote(api_url),
        quote(api_key)
    )
}

/// 1-based line and column of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|last| last.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_follows_the_override_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| PathBuf::from(value))
            }
        };
        assert_eq!(
            CliConfig::path_from(env(&[
                ("OPENSANDBOX_CONFIG", "/x/oc.toml"),
                ("HOME", "/home/u")
            ])),
            Some(PathBuf::from("/x/oc.toml"))
        );
        assert_eq!(
            CliConfig::path_from(env(&[("XDG_CONFIG_HOME", "/cfg"), ("HOME", "/home/u")])),
            Some(PathBuf::from("/cfg/opensandbox/config.toml"))
        );
        assert_eq!(
            CliConfig::path_from(env(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/home/u")])),
            Some(PathBuf::from("/home/u/.config/opensandbox/config.toml"))
        );
        assert_eq!(
            CliConfig::path_from(env(&[("OPENSANDBOX_CONFIG", "")])),
            None
        );
    }

    #[test]
    fn written_files_read_back_are_private_and_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a").join("b").join("config.toml");
        let key = "osb_k\"ey\\with\nodd bytes";
        assert!(CliConfig::write_new(&path, "http://127.0.0.1:8080", key).expect("write"));
        let loaded = CliConfig::load(&path).expect("load").expect("exists");
        assert_eq!(loaded.api_key.as_deref(), Some(key));
        assert_eq!(loaded.api_url.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(CliConfig::loose_permissions(&path), None);
        let dir_mode = fs::metadata(path.parent().expect("parent"))
            .expect("dir")
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert!(!CliConfig::write_new(&path, "http://other", "osb_other").expect("write"));
        assert_eq!(
            CliConfig::load(&path).expect("load"),
            Some(loaded),
            "unchanged"
        );
        let leftovers: Vec<_> = fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .collect();
        assert_eq!(leftovers.len(), 1, "no staging file left behind");
    }

    #[test]
    fn a_missing_file_is_none_and_a_broken_one_names_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        assert_eq!(CliConfig::load(&path).expect("load"), None);
        fs::write(&path, "api_url = \"http://x\"\napi_key = osb_unquoted\n").expect("write");
        let error = CliConfig::load(&path).expect_err("malformed").to_string();
        assert!(error.contains(&format!("{}:2:", path.display())), "{error}");
        assert!(!error.contains("osb_unquoted"), "{error}");
        fs::write(&path, "api-url = \"http://x\"\n").expect("write");
        let error = CliConfig::load(&path).expect_err("unknown key").to_string();
        assert!(
            error.contains(":1:1:") && error.contains("api-url"),
            "{error}"
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let config = CliConfig {
            api_url: Some("http://x".into()),
            api_key: Some("osb_secret_value".into()),
        };
        assert!(!format!("{config:?}").contains("osb_secret_value"));
    }
}
