//! DESIGN.md §7: the database holds only ciphertext. A canary value is stored (and updated,
//! and rewrapped) and then every row of every table is searched for it in any encoding.

use osb_testkit::{Canary, TestDatabase};
use osb_vault::SecretValue;

use crate::{hex_key, project, vault, PRIMARY};

#[tokio::test]
async fn database_rows_never_hold_the_plaintext() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let key_v1 = hex_key();
        let vault_v1 = vault(&store, &[(PRIMARY, &key_v1)]).await;
        let (org, project) = project(&store).await;
        let first = Canary::new("db-first");
        let second = Canary::new("db-second");

        vault_v1
            .put_secret(
                org,
                project,
                "API_KEY",
                &SecretValue::from_string(first.value().to_owned()),
                None,
            )
            .await
            .expect("put");
        vault_v1
            .put_secret(
                org,
                project,
                "API_KEY",
                &SecretValue::from_string(second.value().to_owned()),
                None,
            )
            .await
            .expect("update");
        // Rotate and rewrap so every write path has run.
        let key_v2 = hex_key();
        let vault_v2 = vault(
            &store,
            &[
                (PRIMARY, &key_v2),
                ("OPENSANDBOX_SECRET_ENCRYPTION_KEY_V1", &key_v1),
            ],
        )
        .await;
        vault_v2.rewrap(10).await.expect("rewrap");

        let dump = store.dump_all_rows_as_text().await.expect("dump");
        assert!(
            dump.contains("API_KEY"),
            "the dump really covers the secrets table"
        );
        first.assert_absent("the database", &dump);
        second.assert_absent("the database", &dump);
        // The master keys themselves are not in the database either (only fingerprints).
        assert!(!dump.contains(&key_v1) && !dump.contains(&key_v2));

        let (_, value) = vault_v2
            .reveal_secret(project, "API_KEY")
            .await
            .expect("reveal")
            .expect("exists");
        assert_eq!(value.expose_bytes(), second.value().as_bytes());
    }
}

#[tokio::test]
async fn debug_output_of_vault_types_never_prints_values() {
    let database = TestDatabase::sqlite().await.expect("db");
    let store = database.migrated_store().await.expect("store");
    let key = hex_key();
    let vault = vault(&store, &[(PRIMARY, &key)]).await;
    let (org, project) = project(&store).await;
    let canary = Canary::new("debug");
    let stored = vault
        .put_secret(
            org,
            project,
            "TOKEN",
            &SecretValue::from_string(canary.value().to_owned()),
            None,
        )
        .await
        .expect("put");
    let revealed = vault.reveal_secret(project, "TOKEN").await.expect("reveal");
    let sealed = store
        .get_sealed_secret(project, "TOKEN")
        .await
        .expect("row");
    let printed = format!(
        "{vault:?} {stored:?} {revealed:?} {sealed:?} {:#?}",
        vault.keyring()
    );
    canary.assert_absent("Debug output", &printed);
    assert!(!printed.contains(&key), "a master key reached Debug output");
}
