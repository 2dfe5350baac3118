//! `osbd`'s settings: the embedded database by default, an external one from `DATABASE_URL`,
//! whose password never appears in what `osbd` prints.

use std::path::PathBuf;

use osbd::settings::{DatabaseSetting, Settings, DATABASE_URL_ENV, DATA_DIR_ENV};

#[test]
fn embedded_by_default_external_with_url() {
    let settings = Settings::from_lookup(|name| match name {
        DATA_DIR_ENV => Some("/tmp/x".to_owned()),
        _ => None,
    });
    assert_eq!(
        settings.database,
        DatabaseSetting::Embedded(PathBuf::from("/tmp/x/opensandbox.sqlite"))
    );
    let settings = Settings::from_lookup(|name| match name {
        DATABASE_URL_ENV => Some("postgres://u:pw@h/db".to_owned()),
        _ => None,
    });
    assert_eq!(settings.database.describe(), "postgres://u:***@h/db");
}
