//! Operator mistakes fail closed (ADR 0019): a well-formed but wrong primary key never becomes
//! the primary while stored secrets sit under versions no configured key opens (the vault opens
//! locked and says why); a deleted secret's old ciphertext cannot be replayed into a re-created
//! secret of the same name; rows of the legacy layout are migrated by rewrap, after which that
//! layout is refused for good.

use osb_proto::SecretId;
use osb_store::SecretWrite;
use osb_testkit::TestDatabase;
use osb_vault::{
    seal, KeyLossPolicy, SecretAad, SecretValue, Vault, VaultError, VaultReadiness,
    CURRENT_ROW_BINDING, LEGACY_ROW_BINDING,
};

use crate::{config, hex_key, project, vault, PRIMARY};

const V1: &str = "OPENSANDBOX_SECRET_ENCRYPTION_KEY_V1";

#[tokio::test]
async fn a_wrong_new_primary_locks_the_vault_instead_of_burying_secrets() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let right_key = hex_key();
        let first = vault(&store, &[(PRIMARY, &right_key)]).await;
        let (org, project) = project(&store).await;
        first
            .put_secret(
                org,
                project,
                "A",
                &SecretValue::from_string("a".into()),
                None,
            )
            .await
            .expect("put");
        assert_eq!(
            first.readiness().await.expect("ready"),
            VaultReadiness::Ready
        );

        // A typo: a well-formed key nobody registered, and the real one not configured.
        let typo = Vault::open(store.clone(), config(&[(PRIMARY, &hex_key())]))
            .await
            .expect("a locked vault still opens, to explain itself");
        let VaultReadiness::Locked(reason) = typo.readiness().await.expect("readiness") else {
            panic!("a wrong primary must lock the vault");
        };
        assert!(
            reason.contains("1 secret(s) under key version 1"),
            "{reason}"
        );
        assert!(
            reason.contains("OPENSANDBOX_SECRET_KEYS_ACCEPT_LOSS"),
            "{reason}"
        );
        let refused = typo
            .put_secret(
                org,
                project,
                "B",
                &SecretValue::from_string("b".into()),
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(refused, VaultError::Locked { .. }), "{refused}");
        assert!(matches!(
            typo.rewrap(10).await,
            Err(VaultError::Locked { .. })
        ));
        // Nothing changed: the typo was not registered, no row was written.
        let versions: Vec<u16> = store
            .list_encryption_keys()
            .await
            .expect("registry")
            .iter()
            .map(|entry| entry.version)
            .collect();
        assert_eq!(versions, vec![1]);
        assert_eq!(store.list_secrets(project).await.expect("list").len(), 1);

        // The documented rotation still works: the old key in a retired slot.
        let rotated = vault(&store, &[(PRIMARY, &hex_key()), (V1, &right_key)]).await;
        assert_eq!(rotated.keyring().primary_version(), 2);
        assert_eq!(
            rotated.readiness().await.expect("ready"),
            VaultReadiness::Ready
        );
    }
}

#[tokio::test]
async fn accepting_a_lost_key_is_explicit_and_reported_as_degraded() {
    let database = TestDatabase::postgres().await.expect("db");
    let store = database.migrated_store().await.expect("store");
    let lost_key = hex_key();
    let first = vault(&store, &[(PRIMARY, &lost_key)]).await;
    let (org, project) = project(&store).await;
    first
        .put_secret(
            org,
            project,
            "A",
            &SecretValue::from_string("a".into()),
            None,
        )
        .await
        .expect("put");
    assert_eq!(KeyLossPolicy::from_lookup(|_| None), KeyLossPolicy::Refuse);
    let policy = KeyLossPolicy::from_lookup(|name| {
        (name == osb_vault::ACCEPT_KEY_LOSS_ENV).then(|| "1".to_owned())
    });
    assert_eq!(policy, KeyLossPolicy::AcceptLoss);
    let accepted = Vault::open_with(store.clone(), config(&[(PRIMARY, &hex_key())]), policy)
        .await
        .expect("opens");
    assert_eq!(accepted.keyring().primary_version(), 2);
    let VaultReadiness::Degraded(reason) = accepted.readiness().await.expect("readiness") else {
        panic!("unreadable secrets must be reported");
    };
    assert!(
        reason.contains("1 secret(s) under key version 1"),
        "{reason}"
    );
    accepted
        .put_secret(
            org,
            project,
            "B",
            &SecretValue::from_string("b".into()),
            None,
        )
        .await
        .expect("writes work again");
}

#[tokio::test]
async fn a_deleted_secrets_ciphertext_cannot_be_replayed_into_a_recreated_name() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let vault = vault(&store, &[(PRIMARY, &hex_key())]).await;
        let (org, project) = project(&store).await;
        vault
            .put_secret(
                org,
                project,
                "TOKEN",
                &SecretValue::from_string("revoked-value".into()),
                None,
            )
            .await
            .expect("put");
        let old = store
            .get_sealed_secret(project, "TOKEN")
            .await
            .expect("read")
            .expect("row");
        vault.delete_secret(project, "TOKEN").await.expect("delete");
        let recreated = vault
            .put_secret(
                org,
                project,
                "TOKEN",
                &SecretValue::from_string("new-value".into()),
                None,
            )
            .await
            .expect("re-create");
        assert_ne!(
            recreated.record.id, old.record.id,
            "a re-created secret is a new row"
        );
        assert_eq!(recreated.record.secret_version, old.record.secret_version);
        // Someone with write access to the table puts the old ciphertext back.
        store
            .overwrite_ciphertext_for_tests(recreated.record.id, old.ciphertext.clone())
            .await
            .expect("overwrite");
        let error = vault.reveal_secret(project, "TOKEN").await.unwrap_err();
        assert!(matches!(error, VaultError::Undecryptable { .. }), "{error}");
    }
}

#[tokio::test]
async fn rewrap_moves_legacy_rows_to_the_row_id_binding_and_retires_the_old_layout() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let key = hex_key();
        let vault = vault(&store, &[(PRIMARY, &key)]).await;
        let (org, project) = project(&store).await;
        // A row as the previous release wrote it: legacy layout, no row id in the binding.
        let id = SecretId::new();
        let legacy = SecretAad {
            secret_id: id,
            org_id: org,
            project_id: project,
            name: "OLD".to_owned(),
            secret_version: 1,
            row_binding: LEGACY_ROW_BINDING,
        };
        let value = SecretValue::from_string("legacy-value".into());
        let legacy_ciphertext = seal(vault.keyring(), &legacy, &value).expect("seal");
        store
            .insert_secret(SecretWrite {
                id,
                org_id: org,
                project_id: project,
                name: "OLD".to_owned(),
                ciphertext: legacy_ciphertext.clone(),
                key_version: vault.keyring().primary_version(),
                secret_version: 1,
                allowed_hosts: None,
                row_binding: LEGACY_ROW_BINDING,
            })
            .await
            .expect("legacy row");
        let (_, read) = vault
            .reveal_secret(project, "OLD")
            .await
            .expect("reads")
            .expect("row");
        assert_eq!(read.expose_bytes(), b"legacy-value");

        let report = vault.rewrap(10).await.expect("rewrap");
        assert_eq!(report.rewrapped, 1);
        assert!(report.failed.is_empty());
        assert_eq!(report.binding_floor, CURRENT_ROW_BINDING);
        let migrated = store
            .get_sealed_secret(project, "OLD")
            .await
            .expect("read")
            .expect("row");
        assert_eq!(migrated.record.row_binding, CURRENT_ROW_BINDING);
        let (_, read) = vault
            .reveal_secret(project, "OLD")
            .await
            .expect("reads")
            .expect("row");
        assert_eq!(read.expose_bytes(), b"legacy-value");
        assert_eq!(vault.rewrap(10).await.expect("second run").rewrapped, 0);

        // Rolling the row back to its legacy form is refused from now on, by this vault and
        // by any vault opened later.
        store
            .overwrite_ciphertext_for_tests(id, legacy_ciphertext)
            .await
            .expect("overwrite");
        store
            .set_row_binding_for_tests(id, LEGACY_ROW_BINDING)
            .await
            .expect("binding");
        let error = vault.reveal_secret(project, "OLD").await.unwrap_err();
        assert!(
            matches!(error, VaultError::RetiredRowBinding { .. }),
            "{error}"
        );
        let reopened = crate::vault(&store, &[(PRIMARY, &key)]).await;
        let error = reopened.reveal_secret(project, "OLD").await.unwrap_err();
        assert!(
            matches!(error, VaultError::RetiredRowBinding { .. }),
            "{error}"
        );
    }
}
