//! Key rotation with the database registry: V1 → V2 keeps old rows readable, new writes use the
//! new key, rewrap moves everything (resumable, safe twice), and afterwards the old key can be
//! retired. Plus a property test over random rotation sequences.

use osb_testkit::TestDatabase;
use osb_vault::{SecretValue, VaultError};
use proptest::prelude::*;

use crate::{config, hex_key, project, vault, PRIMARY};

const V1: &str = "OPENSANDBOX_SECRET_ENCRYPTION_KEY_V1";
const V5: &str = "OPENSANDBOX_SECRET_ENCRYPTION_KEY_V5";

#[tokio::test]
async fn rotate_then_rewrap_then_retire() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let old_key = hex_key();
        let before = vault(&store, &[(PRIMARY, &old_key)]).await;
        assert_eq!(before.keyring().primary_version(), 1);
        let (org, project) = project(&store).await;
        for name in ["A", "B", "C"] {
            before
                .put_secret(
                    org,
                    project,
                    name,
                    &SecretValue::from_string(format!("value-{name}")),
                    None,
                )
                .await
                .expect("put");
        }

        // Documented rotation: park the old primary in a retired slot, set a new primary.
        let new_key = hex_key();
        let after = vault(&store, &[(PRIMARY, &new_key), (V1, &old_key)]).await;
        assert_eq!(
            after.keyring().primary_version(),
            2,
            "a new primary gets a new version"
        );
        let (_, old_row_value) = after
            .reveal_secret(project, "A")
            .await
            .expect("read")
            .expect("row");
        assert_eq!(old_row_value.expose_bytes(), b"value-A");
        let written = after
            .put_secret(
                org,
                project,
                "B",
                &SecretValue::from_string("value-B2".into()),
                None,
            )
            .await
            .expect("write under new key");
        assert_eq!(written.record.key_version, 2, "the new primary encrypts");

        let status = after.key_status().await.expect("status");
        assert_eq!(status.len(), 2);
        assert_eq!(
            (status[0].version, status[0].secrets, status[0].configured),
            (1, 2, true)
        );
        assert_eq!(
            (status[1].version, status[1].secrets, status[1].primary),
            (2, 1, true)
        );

        let report = after.rewrap(1).await.expect("rewrap");
        assert_eq!(report.rewrapped, 2);
        assert!(report.failed.is_empty());
        let again = after.rewrap(1).await.expect("second rewrap");
        assert_eq!(again.rewrapped, 0, "rewrap is safe to run twice");
        assert_eq!(
            store.count_secrets_by_key_version().await.expect("count"),
            vec![(2, 3)]
        );

        // Retire the old key: everything still reads, under a key in any slot.
        let retired = vault(&store, &[(PRIMARY, &new_key)]).await;
        for (name, expected) in [("A", "value-A"), ("B", "value-B2"), ("C", "value-C")] {
            let (_, value) = retired
                .reveal_secret(project, name)
                .await
                .expect("read")
                .expect("row");
            assert_eq!(value.expose_bytes(), expected.as_bytes());
        }
    }
}

#[tokio::test]
async fn forgetting_the_old_key_names_the_missing_version_and_rewrap_resumes() {
    let database = TestDatabase::postgres().await.expect("db");
    let store = database.migrated_store().await.expect("store");
    let old_key = hex_key();
    let before = vault(&store, &[(PRIMARY, &old_key)]).await;
    let (org, project) = project(&store).await;
    before
        .put_secret(
            org,
            project,
            "A",
            &SecretValue::from_string("a".into()),
            None,
        )
        .await
        .expect("put");

    // The operator sets a new primary but forgets to keep the old key: the vault opens
    // locked (ADR 0019) — it reads what it can, seals nothing, registers nothing.
    let new_key = hex_key();
    let forgetful = vault(&store, &[(PRIMARY, &new_key)]).await;
    let error = forgetful.reveal_secret(project, "A").await.unwrap_err();
    assert!(
        matches!(error, VaultError::UnknownKeyVersion { version: 1 }),
        "{error}"
    );
    let refused = forgetful.rewrap(10).await.unwrap_err();
    assert!(matches!(refused, VaultError::Locked { .. }), "{refused}");
    let status = forgetful.key_status().await.expect("status");
    assert_eq!(status.len(), 1, "the new key was not registered");
    assert!(!status[0].configured && status[0].secrets == 1);

    // Adding the old key back in any slot fixes it; rewrap resumes and finishes.
    let fixed = vault(&store, &[(PRIMARY, &new_key), (V5, &old_key)]).await;
    assert_eq!(fixed.keyring().primary_version(), 2);
    let report = fixed.rewrap(10).await.expect("rewrap");
    assert_eq!((report.rewrapped, report.failed.len()), (1, 0));
}

#[tokio::test]
async fn concurrent_vaults_agree_on_the_registry() {
    let database = TestDatabase::postgres().await.expect("db");
    let store = database.migrated_store().await.expect("store");
    let key = hex_key();
    // Several control planes start at once with the same new key.
    let opened = futures_join(&store, &key).await;
    assert!(opened.iter().all(|version| *version == 1), "{opened:?}");
    assert_eq!(store.list_encryption_keys().await.expect("keys").len(), 1);
}

async fn futures_join(store: &osb_store::Store, key: &str) -> Vec<u16> {
    let mut handles = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        let key = key.to_owned();
        handles.push(tokio::spawn(async move {
            osb_vault::Vault::open(store, config(&[(PRIMARY, &key)]))
                .await
                .expect("open")
                .keyring()
                .primary_version()
        }));
    }
    let mut versions = Vec::new();
    for handle in handles {
        versions.push(handle.await.expect("join"));
    }
    versions
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Random sequences of writes, rotations and rewraps on SQLite: after every step each
    /// secret decrypts to its last written value, as long as the retired keys are kept.
    #[test]
    fn decrypt_of_encrypt_survives_random_rotations(
        steps in proptest::collection::vec((0u8..3, 0usize..3, proptest::collection::vec(any::<u8>(), 1..64)), 1..12)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let database = TestDatabase::sqlite().await.expect("db");
            let store = database.migrated_store().await.expect("store");
            let mut keys = vec![hex_key()];
            let mut current = vault(&store, &[(PRIMARY, &keys[0])]).await;
            let (org, project) = project(&store).await;
            let names = ["A", "B", "C"];
            let mut expected: [Option<Vec<u8>>; 3] = [None, None, None];
            for (action, which, bytes) in steps {
                match action {
                    0 => {
                        current
                            .put_secret(org, project, names[which], &SecretValue::new(bytes.clone()), None)
                            .await
                            .expect("put");
                        expected[which] = Some(bytes);
                    }
                    1 if keys.len() < 9 => {
                        keys.push(hex_key());
                        let slots: Vec<String> = (1..keys.len()).map(|slot| format!("OPENSANDBOX_SECRET_ENCRYPTION_KEY_V{slot}")).collect();
                        let mut pairs: Vec<(&str, &str)> = vec![(PRIMARY, keys.last().map(String::as_str).unwrap_or_default())];
                        // Park the older keys in slots in reverse order: slots do not matter.
                        for (slot, key) in slots.iter().zip(keys.iter().rev().skip(1)) {
                            pairs.push((slot.as_str(), key.as_str()));
                        }
                        current = vault(&store, &pairs).await;
                        assert_eq!(usize::from(current.keyring().primary_version()), keys.len());
                    }
                    _ => {
                        let report = current.rewrap(2).await.expect("rewrap");
                        assert!(report.failed.is_empty());
                    }
                }
                for (index, name) in names.iter().enumerate() {
                    let revealed = current.reveal_secret(project, name).await.expect("reveal");
                    match (&expected[index], revealed) {
                        (None, None) => {}
                        (Some(bytes), Some((_, value))) => assert_eq!(value.expose_bytes(), bytes.as_slice()),
                        (expected, got) => panic!("{name}: expected {:?}, got {:?}", expected.is_some(), got.is_some()),
                    }
                }
            }
        });
    }
}
