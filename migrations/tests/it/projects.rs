//! Projects: uniqueness per org, partial updates, org isolation, deletion.

use osb_store::{ProjectPatch, StoreError};
use osb_testkit::TestDatabase;

use crate::{new_project, org};

#[tokio::test]
async fn names_are_unique_per_org_only() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        let other = org(&store, "other").await;
        store
            .create_project(new_project(acme, "web"))
            .await
            .expect("create");
        let duplicate = store.create_project(new_project(acme, "web")).await;
        assert!(
            matches!(duplicate, Err(StoreError::Conflict(_))),
            "{duplicate:?}"
        );
        store
            .create_project(new_project(other, "web"))
            .await
            .expect("same name in another org");
    }
}

#[tokio::test]
async fn list_is_sorted_and_scoped_to_the_org() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        let other = org(&store, "other").await;
        for name in ["zeta", "alpha", "mid"] {
            store
                .create_project(new_project(acme, name))
                .await
                .expect("create");
        }
        store
            .create_project(new_project(other, "hidden"))
            .await
            .expect("create");
        let names: Vec<String> = store
            .list_projects(acme)
            .await
            .expect("list")
            .into_iter()
            .map(|project| project.name)
            .collect();
        assert_eq!(names, ["alpha", "mid", "zeta"]);
        assert!(store
            .list_projects(osb_proto::OrgId::new())
            .await
            .expect("list")
            .is_empty());
    }
}

#[tokio::test]
async fn patch_merges_and_other_orgs_cannot_touch() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        let other = org(&store, "other").await;
        let project = store
            .create_project(new_project(acme, "web"))
            .await
            .expect("create");

        let patched = store
            .update_project(
                acme,
                project.id,
                ProjectPatch {
                    cpu_count: Some(2),
                    ..ProjectPatch::default()
                },
            )
            .await
            .expect("patch");
        assert_eq!(patched.cpu_count, 2);
        assert_eq!(patched.memory_mb, 512, "absent fields keep their value");
        assert_eq!(patched.egress_allowlist, ["api.example.test"]);

        let cleared = store
            .update_project(
                acme,
                project.id,
                ProjectPatch {
                    egress_allowlist: Some(Vec::new()),
                    ..ProjectPatch::default()
                },
            )
            .await
            .expect("clear allowlist");
        assert!(cleared.egress_allowlist.is_empty());

        let foreign = store
            .update_project(other, project.id, ProjectPatch::default())
            .await;
        assert!(matches!(foreign, Err(StoreError::NotFound(_))));
        assert!(matches!(
            store.get_project(other, project.id).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.delete_project(other, project.id).await,
            Err(StoreError::NotFound(_))
        ));
        // Still there, unchanged by the foreign attempts.
        assert_eq!(
            store.get_project(acme, project.id).await.expect("get"),
            cleared
        );
    }
}

#[tokio::test]
async fn renaming_onto_a_taken_name_is_a_conflict_and_changes_nothing() {
    for database in TestDatabase::each_kind().await.expect("dbs") {
        let store = database.migrated_store().await.expect("store");
        let acme = org(&store, "acme").await;
        store
            .create_project(new_project(acme, "a"))
            .await
            .expect("a");
        let b = store
            .create_project(new_project(acme, "b"))
            .await
            .expect("b");
        let rename = store
            .update_project(
                acme,
                b.id,
                ProjectPatch {
                    name: Some("a".to_owned()),
                    cpu_count: Some(4),
                    ..ProjectPatch::default()
                },
            )
            .await;
        assert!(matches!(rename, Err(StoreError::Conflict(_))), "{rename:?}");
        assert_eq!(store.get_project(acme, b.id).await.expect("get"), b);
    }
}
