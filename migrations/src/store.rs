//! The `Store` handle: one connection pool, the database kind, and the migration entry points.
//! It never retries silently; callers decide what a failure means.

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;

use crate::error::StoreError;
use crate::migrator::Migrator;

/// Which database engine backs the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres,
    Sqlite,
}

/// A handle to the database. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    kind: DatabaseKind,
}

impl Store {
    /// Connects to `postgres://…` or `sqlite://…` (use `?mode=rwc` to create the file).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(16)
            .min_connections(0)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            // Statement logging would print bound parameters (ciphertext, key hashes).
            .sqlx_logging(false);
        let db = Database::connect(options).await?;
        let kind = match db.get_database_backend() {
            DbBackend::Postgres => DatabaseKind::Postgres,
            DbBackend::Sqlite => DatabaseKind::Sqlite,
            other => {
                return Err(StoreError::corrupt(
                    "database url",
                    format!("unsupported backend {other:?}; use postgres:// or sqlite://"),
                ))
            }
        };
        Ok(Self { db, kind })
    }

    /// The engine behind this store.
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// Applies every pending migration.
    pub async fn migrate_up(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// Reverts every applied migration (tests and `osbd migrate down`).
    pub async fn migrate_down_all(&self) -> Result<(), StoreError> {
        Migrator::down(&self.db, None).await?;
        Ok(())
    }

    /// Names of migrations applied so far, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<String>, StoreError> {
        let applied = Migrator::get_applied_migrations(&self.db).await?;
        Ok(applied.iter().map(|m| m.name().to_owned()).collect())
    }

    /// Names of migrations not applied yet.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        let pending = Migrator::get_pending_migrations(&self.db).await?;
        Ok(pending.iter().map(|m| m.name().to_owned()).collect())
    }

    /// True when the database answers a trivial query (readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await?;
        Ok(())
    }

    pub(crate) fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Every row of every application table rendered as text, for canary tests that prove a
    /// plaintext value is absent from the database. Binary columns are rendered as hex and as
    /// lossy UTF-8 so that a plaintext stored in a blob would still be found.
    pub async fn dump_all_rows_as_text(&self) -> Result<String, StoreError> {
        let mut out = String::new();
        for table in crate::migrator::APPLICATION_TABLES {
            let statement =
                sea_orm::Statement::from_string(self.backend(), format!("SELECT * FROM {table}"));
            let rows = self.db.query_all_raw(statement).await?;
            // Sorted: an UPDATE may move a row (PostgreSQL MVCC), which must not look like a
            // change to tests comparing dumps.
            let mut lines: Vec<String> = rows
                .iter()
                .map(|row| {
                    let mut line = format!("{table}: ");
                    for column in row.column_names() {
                        line.push_str(&render_cell(row, &column));
                        line.push(' ');
                    }
                    line.push('\n');
                    line
                })
                .collect();
            lines.sort();
            out.extend(lines);
        }
        Ok(out)
    }
}

fn render_cell(row: &sea_orm::QueryResult, column: &str) -> String {
    if let Ok(Some(text)) = row.try_get::<Option<String>>("", column) {
        return text;
    }
    if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>>("", column) {
        return format!(
            "{} {}",
            String::from_utf8_lossy(&bytes),
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
    }
    if let Ok(Some(value)) = row.try_get::<Option<serde_json::Value>>("", column) {
        return value.to_string();
    }
    if let Ok(Some(number)) = row.try_get::<Option<i64>>("", column) {
        return number.to_string();
    }
    if let Ok(Some(uuid)) = row.try_get::<Option<uuid::Uuid>>("", column) {
        return uuid.to_string();
    }
    String::new()
}
