//! Fresh databases per test. PostgreSQL: `CREATE DATABASE osb_test_<random>` on the server named
//! by `OSB_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped
//! with `WITH (FORCE)` when the guard goes out of scope. SQLite: a file in a temporary directory.

use osb_store::Store;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

/// Environment variable naming the PostgreSQL server (an admin connection URL) tests use.
pub const POSTGRES_URL_ENV: &str = "OSB_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Why a test database could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum TestDatabaseError {
    #[error(
        "cannot reach the test PostgreSQL at {url} (start it with scripts/services.sh): {source}"
    )]
    Unreachable {
        url: String,
        #[source]
        source: sea_orm::DbErr,
    },
    #[error("cannot create the test database: {0}")]
    Create(#[source] sea_orm::DbErr),
    #[error("cannot open the store: {0}")]
    Store(#[from] osb_store::StoreError),
    #[error("cannot create a temporary directory: {0}")]
    TempDir(#[from] std::io::Error),
}

/// The admin URL of the test PostgreSQL server.
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_ADMIN_URL.to_owned())
}

/// A database that exists for one test. Dropping it removes it.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    postgres_name: Option<String>,
    _sqlite_dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// Creates a new, empty PostgreSQL database with a random name.
    pub async fn postgres() -> Result<Self, TestDatabaseError> {
        let admin_url = postgres_admin_url();
        let admin = Database::connect(admin_url.as_str())
            .await
            .map_err(|source| TestDatabaseError::Unreachable {
                url: admin_url.clone(),
                source,
            })?;
        let name = format!("osb_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("CREATE DATABASE {name}"),
            ))
            .await
            .map_err(TestDatabaseError::Create)?;
        let _ = admin.close().await;
        let url = replace_database_name(&admin_url, &name);
        Ok(Self {
            url,
            postgres_name: Some(name),
            _sqlite_dir: None,
        })
    }

    /// Creates a new SQLite database file in a temporary directory.
    pub async fn sqlite() -> Result<Self, TestDatabaseError> {
        let dir = tempfile::tempdir()?;
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("osb.sqlite").display()
        );
        Ok(Self {
            url,
            postgres_name: None,
            _sqlite_dir: Some(dir),
        })
    }

    /// Both kinds, for tests that must hold on each engine.
    pub async fn each_kind() -> Result<Vec<Self>, TestDatabaseError> {
        Ok(vec![Self::postgres().await?, Self::sqlite().await?])
    }

    /// The connection URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store on this database with every migration applied.
    pub async fn migrated_store(&self) -> Result<Store, TestDatabaseError> {
        let store = Store::connect(&self.url).await?;
        store.migrate_up().await?;
        Ok(store)
    }

    /// A store on this database with no migration applied.
    pub async fn empty_store(&self) -> Result<Store, TestDatabaseError> {
        Ok(Store::connect(&self.url).await?)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let admin_url = postgres_admin_url();
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = Database::connect(admin_url.as_str()).await {
                    let _ = admin
                        .execute_raw(Statement::from_string(
                            DbBackend::Postgres,
                            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        ))
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

fn replace_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    match query {
        Some(query) => format!("{prefix}/{name}?{query}"),
        None => format!("{prefix}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database_name;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_database_name("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database_name("postgres://u@h/db?sslmode=disable", "y"),
            "postgres://u@h/y?sslmode=disable"
        );
    }
}
