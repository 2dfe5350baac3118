//! Where `oc` reads its configuration, and writing it for `osbd up`: `OPENSANDBOX_CONFIG`, else
//! `$XDG_CONFIG_HOME/opensandbox/config.toml`, else `~/.config/opensandbox/config.toml`. The
//! file holds an API key: it is created 0600 in a 0700 directory and never overwritten.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::context::CommandError;

/// Overrides the config path.
pub const CONFIG_ENV: &str = "OPENSANDBOX_CONFIG";

/// The config path, if there is a home to put it in.
pub(crate) fn default_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(base.join("opensandbox").join("config.toml"))
}

/// Writes a new config file (refusing to replace one).
pub(crate) fn write_new(path: &Path, api_url: &str, api_key: &str) -> Result<(), CommandError> {
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "api_url = {api_url:?}")?;
    writeln!(file, "api_key = {api_key:?}")?;
    Ok(())
}
