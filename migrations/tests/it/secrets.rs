//! Secret rows: conditional replacement, per-project uniqueness, cascade on project delete.

use osb_proto::SecretId;
use osb_store::{SecretWrite, StoreError};
use osb_testkit::TestDatabase;

use crate::{new_project, org};

fn write(
    project: &osb_store::ProjectRecord,
    name: &str,
    version: u64,
    id: SecretId,
) -> SecretWrite {
    SecretWrite {
        id,
        org_id: project.org_id,
        project_id: project.id,
        name: name.to_owned(),
        ciphertext: vec![0, 1, 2, 3, version as u8],
        key_version: 1,
        secret_version: version,
        allowed_hosts: Some(vec!["api.example.test".to_owned()]),
        row_binding: 2,
    }
}

#[tokio::test]
async fn conditional_replace_detects_concurrent_writers() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        let project = store
            .create_project(new_project(acme, "web"))
            .await
            .expect("project");

        let id = SecretId::new();
        let inserted = store
            .insert_secret(write(&project, "API_KEY", 1, id))
            .await
            .expect("insert");
        assert_eq!(
            inserted.id, id,
            "the row gets the id the vault bound its ciphertext to"
        );
        assert_eq!(inserted.row_binding, 2);
        let duplicate = store
            .insert_secret(write(&project, "API_KEY", 1, SecretId::new()))
            .await;
        assert!(matches!(duplicate, Err(StoreError::Conflict(_))));

        // A write for another row of the same name (deleted and re-created meanwhile) must
        // not land: its ciphertext is bound to that other id.
        let other_row = store
            .replace_secret(write(&project, "API_KEY", 2, SecretId::new()), 1)
            .await;
        assert!(
            matches!(other_row, Err(StoreError::Stale(_))),
            "{other_row:?}"
        );
        let replaced = store
            .replace_secret(write(&project, "API_KEY", 2, id), 1)
            .await
            .expect("replace at v1");
        assert_eq!(replaced.secret_version, 2);
        assert_eq!(replaced.id, id);
        let stale = store
            .replace_secret(write(&project, "API_KEY", 2, id), 1)
            .await;
        assert!(matches!(stale, Err(StoreError::Stale(_))), "{stale:?}");
        let missing = store
            .replace_secret(write(&project, "NOPE", 2, SecretId::new()), 1)
            .await;
        assert!(matches!(missing, Err(StoreError::NotFound(_))));

        let listed = store.list_secrets(project.id).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(
            listed[0].allowed_hosts.as_deref(),
            Some(&["api.example.test".to_owned()][..])
        );
    }
}

#[tokio::test]
async fn secrets_go_with_their_project() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        let project = store
            .create_project(new_project(acme, "web"))
            .await
            .expect("project");
        store
            .insert_secret(write(&project, "A", 1, SecretId::new()))
            .await
            .expect("insert");
        store
            .delete_project(acme, project.id)
            .await
            .expect("delete");
        assert!(store
            .list_secrets(project.id)
            .await
            .expect("list")
            .is_empty());
        assert_eq!(
            store.count_secrets_by_key_version().await.expect("count"),
            vec![]
        );
    }
}
