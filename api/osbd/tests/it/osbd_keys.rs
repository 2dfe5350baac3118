//! `osbd keys generate|status|rewrap` through the real binary: the documented rotation
//! procedure, clear errors for bad keys, and no secret value or key in the output.

use osb_store::NewProject;
use osb_testkit::{Canary, TestDatabase};
use osb_vault::{KeyringConfig, SecretValue, Vault};

use crate::{osbd, text};

const PRIMARY: &str = "OPENSANDBOX_SECRET_ENCRYPTION_KEY";

fn generate() -> String {
    let output = osbd(&["keys", "generate"], &[]);
    assert!(output.status.success());
    let (stdout, stderr) = text(&output);
    let key = stdout.trim().to_owned();
    assert_eq!(key.len(), 64);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(
        stderr.contains("rewrap"),
        "generate explains the rotation: {stderr}"
    );
    key
}

#[test]
fn generate_gives_a_fresh_key_each_time() {
    assert_ne!(generate(), generate());
}

#[tokio::test]
async fn documented_rotation_through_the_cli() {
    let database = TestDatabase::postgres().await.expect("db");
    let url = database.url().to_owned();
    let old_key = generate();
    let init = osbd(&["init"], &[("DATABASE_URL", &url), (PRIMARY, &old_key)]);
    assert!(init.status.success(), "{:?}", text(&init));

    // Store a canary secret under the old key (as the API will).
    let canary = Canary::new("cli");
    let store = database.migrated_store().await.expect("store");
    let org = store.create_org("acme").await.expect("org");
    let project = store
        .create_project(NewProject {
            org_id: org.id,
            name: "web".into(),
            template: None,
            cpu_count: 1,
            memory_mb: 256,
            timeout_sec: 60,
            egress_allowlist: vec![],
            runtime: None,
        })
        .await
        .expect("project");
    let old_config = KeyringConfig::from_lookup(|name| (name == PRIMARY).then(|| old_key.clone()))
        .expect("config");
    let vault = Vault::open(store.clone(), old_config).await.expect("vault");
    vault
        .put_secret(
            org.id,
            project.id,
            "API_KEY",
            &SecretValue::from_string(canary.value().into()),
            None,
        )
        .await
        .expect("put");

    // Rotate: old key parked in V1, new key primary, rewrap.
    let new_key = generate();

    // The classic mistake first: the new key without the old one. The vault opens locked,
    // says so loudly, and registers nothing (the real rotation below still gets version 2).
    let forgetful = [("DATABASE_URL", url.as_str()), (PRIMARY, new_key.as_str())];
    let status = osbd(&["keys", "status"], &forgetful);
    let (stdout, stderr) = text(&status);
    assert!(
        stderr.contains("the secret vault is locked") && stderr.contains("key version 1"),
        "{stderr}"
    );
    assert!(
        !stdout.lines().any(|line| line.starts_with("2 ")),
        "{stdout}"
    );
    let rewrap = osbd(&["keys", "rewrap"], &forgetful);
    assert!(!rewrap.status.success());
    assert!(text(&rewrap).1.contains("locked"), "{:?}", text(&rewrap));
    let rotated = [
        ("DATABASE_URL", url.as_str()),
        (PRIMARY, new_key.as_str()),
        ("OPENSANDBOX_SECRET_ENCRYPTION_KEY_V1", old_key.as_str()),
    ];
    let status = osbd(&["keys", "status"], &rotated);
    let (stdout, _) = text(&status);
    assert!(status.status.success(), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with("1 ") && line.trim_end().ends_with('1')),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with("2 ") && line.contains("yes      ")),
        "{stdout}"
    );

    let rewrap = osbd(&["keys", "rewrap", "--batch-size", "1"], &rotated);
    let (stdout, stderr) = text(&rewrap);
    assert!(rewrap.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("rewrapped 1 secret(s) onto key version 2"),
        "{stdout}"
    );
    assert!(stdout.contains("bound to its row id"), "{stdout}");
    for output in [&stdout, &stderr] {
        canary.assert_absent("osbd output", output);
        assert!(!output.contains(&old_key) && !output.contains(&new_key));
    }

    // The old key can now go: status shows nothing left under version 1.
    let retired = [("DATABASE_URL", url.as_str()), (PRIMARY, new_key.as_str())];
    let status = osbd(&["keys", "status"], &retired);
    let (stdout, stderr) = text(&status);
    assert!(status.status.success());
    assert!(
        stdout.lines().any(|line| line.starts_with("1 ")
            && line.contains(" no ")
            && line.trim_end().ends_with('0')),
        "{stdout}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[tokio::test]
async fn bad_keys_are_refused_clearly() {
    let database = TestDatabase::postgres().await.expect("db");
    let url = database.url().to_owned();
    let short = osbd(
        &["keys", "status"],
        &[("DATABASE_URL", &url), (PRIMARY, "abc123")],
    );
    // The schema is not there yet: that is said first.
    assert_eq!(short.status.code(), Some(2));
    assert!(
        text(&short).1.contains("osbd migrate up"),
        "{:?}",
        text(&short)
    );

    let migrate = osbd(&["migrate", "up"], &[("DATABASE_URL", &url)]);
    assert!(migrate.status.success());
    let short = osbd(
        &["keys", "status"],
        &[("DATABASE_URL", &url), (PRIMARY, "abc123")],
    );
    assert_eq!(short.status.code(), Some(2));
    let (_, stderr) = text(&short);
    assert!(
        stderr.contains("OPENSANDBOX_SECRET_ENCRYPTION_KEY is malformed"),
        "{stderr}"
    );
    assert!(stderr.contains("64 hex"), "{stderr}");

    let key = generate();
    let bad_slot = osbd(
        &["keys", "status"],
        &[
            ("DATABASE_URL", &url),
            (PRIMARY, &key),
            ("OPENSANDBOX_SECRET_ENCRYPTION_KEY_V3", "not-a-key"),
        ],
    );
    assert_eq!(bad_slot.status.code(), Some(2));
    assert!(text(&bad_slot)
        .1
        .contains("OPENSANDBOX_SECRET_ENCRYPTION_KEY_V3 is malformed"));
}
