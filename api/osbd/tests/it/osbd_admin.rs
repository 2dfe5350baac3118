//! `osbd admin create-org|create-key` through the real binary: the key works against the
//! gateway's hash lookup, is printed once, and bad input changes nothing.

use osb_gateway::hash_api_key;
use osb_testkit::TestDatabase;

use crate::{osbd, text};

fn value<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} in {stdout}"))
}

#[tokio::test]
async fn create_org_prints_a_working_key_once() {
    let database = TestDatabase::postgres().await.unwrap();
    let env = [("DATABASE_URL", database.url())];
    assert!(osbd(&["migrate", "up"], &env).status.success());
    let created = osbd(&["admin", "create-org", "acme"], &env);
    let (stdout, stderr) = text(&created);
    assert!(created.status.success(), "{stdout}{stderr}");
    let key = value(&stdout, "api_key");
    assert!(key.starts_with("osk_") && key.len() == 44, "{key}");
    assert!(stderr.contains("shown only once"));

    let store = database.migrated_store().await.unwrap();
    let record = store
        .find_active_api_key(&hash_api_key(key))
        .await
        .unwrap()
        .expect("key is stored by hash");
    assert_eq!(record.org_id.to_string(), value(&stdout, "org_id"));
    let rows = store.dump_all_rows_as_text().await.unwrap();
    assert!(!rows.contains(key), "the key itself is not stored");

    let duplicate = osbd(&["admin", "create-org", "acme"], &env);
    assert_eq!(duplicate.status.code(), Some(2));
    assert!(text(&duplicate).1.contains("create-key acme"));

    let second = osbd(&["admin", "create-key", "acme", "--name", "ci"], &env);
    assert!(second.status.success());
    assert_ne!(value(&text(&second).0, "api_key"), key);

    let bad = osbd(&["admin", "create-org", "Bad Name"], &env);
    assert_eq!(bad.status.code(), Some(2));
    let missing = osbd(&["admin", "create-key", "nope"], &env);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(
        store
            .dump_all_rows_as_text()
            .await
            .unwrap()
            .matches("api_keys:")
            .count(),
        2
    );
}

#[tokio::test]
async fn org_development_runtime_opt_in_is_off_until_an_admin_turns_it_on() {
    let database = TestDatabase::postgres().await.unwrap();
    let env = [("DATABASE_URL", database.url())];
    assert!(osbd(&["migrate", "up"], &env).status.success());
    assert!(osbd(&["admin", "create-org", "acme"], &env)
        .status
        .success());
    let shown = osbd(&["admin", "org", "acme"], &env);
    assert!(shown.status.success());
    assert_eq!(value(&text(&shown).0, "development_runtime"), "off");
    let on = osbd(
        &["admin", "org", "acme", "--development-runtime", "on"],
        &env,
    );
    assert_eq!(value(&text(&on).0, "development_runtime"), "on");
    let store = database.migrated_store().await.unwrap();
    let org = store.find_org_by_name("acme").await.unwrap().expect("org");
    assert!(org.development_runtime);
    let bad = osbd(
        &["admin", "org", "acme", "--development-runtime", "yes"],
        &env,
    );
    assert_eq!(bad.status.code(), Some(2));
    let missing = osbd(&["admin", "org", "nope"], &env);
    assert_eq!(missing.status.code(), Some(2));
    let off = osbd(
        &["admin", "org", "acme", "--development-runtime", "off"],
        &env,
    );
    assert_eq!(value(&text(&off).0, "development_runtime"), "off");
}
