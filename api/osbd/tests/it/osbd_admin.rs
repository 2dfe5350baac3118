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

#[tokio::test]
async fn org_quotas_are_set_and_shown_checkpoint_bytes_in_mib() {
    let database = TestDatabase::postgres().await.unwrap();
    let env = [("DATABASE_URL", database.url())];
    assert!(osbd(&["migrate", "up"], &env).status.success());
    assert!(osbd(&["admin", "create-org", "acme"], &env)
        .status
        .success());
    let shown = osbd(&["admin", "org", "acme"], &env);
    let stdout = text(&shown).0;
    for quota in [
        "max_sandboxes",
        "max_cpus",
        "max_memory_mb",
        "max_checkpoint_mb",
    ] {
        assert_eq!(value(&stdout, quota), "none", "{quota}");
    }
    assert_eq!(value(&stdout, "checkpoint_bytes_used"), "0");

    let set = osbd(
        &[
            "admin",
            "org",
            "acme",
            "--max-sandboxes",
            "4",
            "--max-checkpoint-mb",
            "5",
        ],
        &env,
    );
    let (stdout, stderr) = text(&set);
    assert!(set.status.success(), "{stdout}{stderr}");
    assert_eq!(value(&stdout, "max_sandboxes"), "4");
    assert_eq!(value(&stdout, "max_checkpoint_mb"), "5");
    let store = database.migrated_store().await.unwrap();
    let org = store.find_org_by_name("acme").await.unwrap().expect("org");
    assert_eq!(
        org.quotas.checkpoint_bytes,
        Some(5 * 1024 * 1024),
        "bytes in the store"
    );
    assert_eq!(org.quotas.sandboxes, Some(4));

    // Changing one quota leaves the others; `none` lifts it; nonsense changes nothing.
    let cpus = osbd(&["admin", "org", "acme", "--max-cpus", "8"], &env);
    assert_eq!(value(&text(&cpus).0, "max_checkpoint_mb"), "5");
    for bad in ["lots", "18446744073709551615"] {
        let refused = osbd(&["admin", "org", "acme", "--max-checkpoint-mb", bad], &env);
        assert_eq!(refused.status.code(), Some(2), "{bad}");
        assert!(text(&refused).1.contains("--max-checkpoint-mb"), "{bad}");
    }
    let org = store.find_org_by_name("acme").await.unwrap().expect("org");
    assert_eq!(org.quotas.checkpoint_bytes, Some(5 * 1024 * 1024));
    let lifted = osbd(
        &["admin", "org", "acme", "--max-checkpoint-mb", "none"],
        &env,
    );
    assert_eq!(value(&text(&lifted).0, "max_checkpoint_mb"), "none");
    assert_eq!(value(&text(&lifted).0, "max_cpus"), "8");
}
