//! A ciphertext moved to another row (another secret, project or version) is refused with a
//! clear error instead of decrypting to the wrong secret.

use osb_testkit::TestDatabase;
use osb_vault::{SecretValue, VaultError};

use crate::{hex_key, project, vault, PRIMARY};

#[tokio::test]
async fn ciphertext_copied_to_another_row_fails_to_decrypt() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let vault = vault(&store, &[(PRIMARY, &hex_key())]).await;
        let (org, project) = project(&store).await;
        vault
            .put_secret(
                org,
                project,
                "PROD_KEY",
                &SecretValue::from_string("prod-value".into()),
                None,
            )
            .await
            .expect("put prod");
        let dev = vault
            .put_secret(
                org,
                project,
                "DEV_KEY",
                &SecretValue::from_string("dev-value".into()),
                None,
            )
            .await
            .expect("put dev");
        let prod_row = store
            .get_sealed_secret(project, "PROD_KEY")
            .await
            .expect("read")
            .expect("exists");
        // An attacker with write access to the table swaps PROD's ciphertext into DEV's row.
        store
            .overwrite_ciphertext_for_tests(dev.record.id, prod_row.ciphertext.clone())
            .await
            .expect("overwrite");
        let error = vault.reveal_secret(project, "DEV_KEY").await.unwrap_err();
        assert!(matches!(error, VaultError::Undecryptable { .. }), "{error}");
        assert!(error.to_string().contains("belongs to another secret row"));

        // Truncated ciphertext gets its own explanation.
        store
            .overwrite_ciphertext_for_tests(dev.record.id, vec![0, 1, 2])
            .await
            .expect("overwrite");
        let short = vault.reveal_secret(project, "DEV_KEY").await.unwrap_err();
        assert!(short.to_string().contains("truncated or corrupt"));
    }
}

#[tokio::test]
async fn empty_and_oversized_values_change_nothing() {
    let database = TestDatabase::postgres().await.expect("db");
    let store = database.migrated_store().await.expect("store");
    let vault = vault(&store, &[(PRIMARY, &hex_key())]).await;
    let (org, project) = project(&store).await;
    let empty = vault
        .put_secret(org, project, "A", &SecretValue::new(Vec::new()), None)
        .await;
    assert!(matches!(empty, Err(VaultError::EmptyValue)));
    let big = vault
        .put_secret(
            org,
            project,
            "A",
            &SecretValue::new(vec![b'x'; 70_000]),
            None,
        )
        .await;
    assert!(matches!(big, Err(VaultError::ValueTooLarge { .. })));
    assert!(store.list_secrets(project).await.expect("list").is_empty());
}

#[tokio::test]
async fn versions_count_up_and_old_ciphertext_cannot_be_replayed() {
    let database = TestDatabase::postgres().await.expect("db");
    let store = database.migrated_store().await.expect("store");
    let vault = vault(&store, &[(PRIMARY, &hex_key())]).await;
    let (org, project) = project(&store).await;
    let first = vault
        .put_secret(
            org,
            project,
            "A",
            &SecretValue::from_string("one".into()),
            None,
        )
        .await
        .expect("v1");
    let v1_ciphertext = store
        .get_sealed_secret(project, "A")
        .await
        .expect("read")
        .expect("exists")
        .ciphertext;
    let second = vault
        .put_secret(
            org,
            project,
            "A",
            &SecretValue::from_string("two".into()),
            Some(vec!["x.test".into()]),
        )
        .await
        .expect("v2");
    assert!(!first.replaced && second.replaced);
    assert_eq!(second.record.secret_version, 2);
    assert_eq!(
        second.record.allowed_hosts.as_deref(),
        Some(&["x.test".to_owned()][..])
    );
    // Rolling the row back to the old ciphertext (version 1) under version 2 fails: the
    // secret version is part of the binding.
    store
        .overwrite_ciphertext_for_tests(second.record.id, v1_ciphertext)
        .await
        .expect("overwrite");
    assert!(matches!(
        vault.reveal_secret(project, "A").await,
        Err(VaultError::Undecryptable { .. })
    ));
}
