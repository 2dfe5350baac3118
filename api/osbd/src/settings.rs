//! Daemon settings from the environment (names are constants here, read through a lookup
//! function so tests can supply their own): the data directory and the database URL. With no
//! `DATABASE_URL` the embedded SQLite file in the data directory is used.

use std::path::{Path, PathBuf};

/// Data directory (SQLite file, dev master key, CA, checkpoints).
pub const DATA_DIR_ENV: &str = "OPENSANDBOX_DATA_DIR";
/// PostgreSQL (or SQLite) URL; unset means the embedded SQLite database.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";
/// File name of the embedded database inside the data directory.
pub const EMBEDDED_DATABASE_FILE: &str = "opensandbox.sqlite";
/// File name of the development master key used only with the embedded database.
pub const DEV_MASTER_KEY_FILE: &str = "master.key";

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseSetting {
    /// `DATABASE_URL` was set.
    External(String),
    /// The embedded SQLite file.
    Embedded(PathBuf),
}

impl DatabaseSetting {
    /// The URL to connect with.
    pub fn url(&self) -> String {
        match self {
            DatabaseSetting::External(url) => url.clone(),
            DatabaseSetting::Embedded(path) => format!("sqlite://{}?mode=rwc", path.display()),
        }
    }

    /// A description safe to print (no password).
    pub fn describe(&self) -> String {
        match self {
            DatabaseSetting::External(url) => redact_url_password(url),
            DatabaseSetting::Embedded(path) => format!("embedded SQLite at {}", path.display()),
        }
    }
}

/// The daemon's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database: DatabaseSetting,
}

impl Settings {
    /// Reads settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let present = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let data_dir = present(DATA_DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(default_data_dir);
        let database = match present(DATABASE_URL_ENV) {
            Some(url) => DatabaseSetting::External(url),
            None => DatabaseSetting::Embedded(data_dir.join(EMBEDDED_DATABASE_FILE)),
        };
        Self { data_dir, database }
    }

    /// Reads settings from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The development master key file (embedded mode only).
    pub fn dev_master_key_path(&self) -> PathBuf {
        self.data_dir.join(DEV_MASTER_KEY_FILE)
    }
}

fn default_data_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) => Path::new(&home).join(".local/share/opensandbox"),
        None => PathBuf::from(".opensandbox"),
    }
}

/// Replaces the password of a URL's userinfo with `***`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}
