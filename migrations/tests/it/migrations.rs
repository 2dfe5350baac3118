//! Migrations run up, down and up again cleanly on both engines.

use osb_testkit::TestDatabase;

#[tokio::test]
async fn up_down_up_on_both_engines() {
    for database in TestDatabase::each_kind().await.expect("test databases") {
        let store = database.empty_store().await.expect("store");
        assert!(store
            .applied_migrations()
            .await
            .unwrap_or_default()
            .is_empty());
        store.migrate_up().await.expect("first up");
        let applied = store.applied_migrations().await.expect("applied");
        assert_eq!(
            applied.len(),
            osb_store::migrator::migration_count(),
            "{:?}",
            store.kind()
        );
        assert!(applied.len() >= 7);
        assert!(store
            .pending_migrations()
            .await
            .expect("pending")
            .is_empty());

        // Data written under the schema goes away with it and comes back empty.
        store.create_org("acme").await.expect("org");
        store.migrate_down_all().await.expect("down");
        assert!(store
            .applied_migrations()
            .await
            .expect("applied")
            .is_empty());

        store.migrate_up().await.expect("second up");
        assert_eq!(
            store.applied_migrations().await.expect("applied").len(),
            osb_store::migrator::migration_count()
        );
        assert!(store
            .find_org_by_name("acme")
            .await
            .expect("query")
            .is_none());
        store.create_org("acme").await.expect("org after re-up");
        // Running up again is a no-op.
        store.migrate_up().await.expect("idempotent up");
    }
}
