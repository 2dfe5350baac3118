//! `osbd init` and `osbd migrate` on the embedded SQLite default and on PostgreSQL.

use std::os::unix::fs::PermissionsExt;

use osb_testkit::TestDatabase;

use crate::{osbd, text};

/// How many migrations the schema has.
fn migrations() -> usize {
    osb_store::migrator::migration_count()
}

#[test]
fn init_prepares_the_embedded_default_with_a_private_dev_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let data = data_dir.to_str().expect("utf-8 path");
    let output = osbd(&["init"], &[("OPENSANDBOX_DATA_DIR", data)]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("embedded SQLite"), "{stdout}");
    assert!(stdout.contains("version 1 is primary"), "{stdout}");
    assert!(
        stderr.contains("development key"),
        "embedded mode says it uses a dev key: {stderr}"
    );

    let key_file = data_dir.join("master.key");
    let mode = std::fs::metadata(&key_file)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let key = std::fs::read_to_string(&key_file).expect("read key");
    assert!(
        !stdout.contains(key.trim()) && !stderr.contains(key.trim()),
        "init printed the key"
    );

    // Running init again is harmless and keeps the same key version.
    let again = osbd(&["init"], &[("OPENSANDBOX_DATA_DIR", data)]);
    let (stdout, _) = text(&again);
    assert!(again.status.success());
    assert!(
        stdout.contains("0 applied now") && stdout.contains("version 1 is primary"),
        "{stdout}"
    );

    let status = osbd(&["migrate", "status"], &[("OPENSANDBOX_DATA_DIR", data)]);
    let (stdout, _) = text(&status);
    assert_eq!(stdout.matches("applied").count(), migrations(), "{stdout}");
}

#[tokio::test]
async fn migrate_against_postgres_and_refuse_down_without_confirmation() {
    let database = TestDatabase::postgres().await.expect("db");
    let env = [("DATABASE_URL", database.url())];
    let up = osbd(&["migrate", "up"], &env);
    assert!(up.status.success(), "{:?}", text(&up));
    assert!(text(&up)
        .0
        .contains(&format!("applied {} migration(s)", migrations())));

    let refused = osbd(&["migrate", "down"], &env);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused).1.contains("--yes-delete-everything"));
    let status = osbd(&["migrate", "status"], &env);
    assert_eq!(
        text(&status).0.matches("applied").count(),
        migrations(),
        "nothing was reverted"
    );

    let down = osbd(&["migrate", "down", "--yes-delete-everything"], &env);
    assert!(down.status.success());
    let status = osbd(&["migrate", "status"], &env);
    assert_eq!(text(&status).0.matches("pending").count(), migrations());
}

#[tokio::test]
async fn an_external_database_requires_the_key_from_the_environment() {
    let database = TestDatabase::postgres().await.expect("db");
    let output = osbd(&["init"], &[("DATABASE_URL", database.url())]);
    assert_eq!(output.status.code(), Some(2));
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("OPENSANDBOX_SECRET_ENCRYPTION_KEY is not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("osbd keys generate"),
        "says what to do: {stderr}"
    );
    let status = osbd(&["migrate", "status"], &[("DATABASE_URL", database.url())]);
    assert_eq!(
        text(&status).0.matches("pending").count(),
        migrations(),
        "the refusal changed nothing"
    );
}

#[test]
fn help_lists_the_commands() {
    let output = osbd(&["--help"], &[]);
    let (stdout, _) = text(&output);
    assert!(output.status.success());
    for command in ["init", "migrate", "keys"] {
        assert!(stdout.contains(command), "{stdout}");
    }
}
