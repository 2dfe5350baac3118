//! Column and foreign-key shapes the migrations repeat: a timestamp with time zone (not null or
//! nullable) and a named foreign key with its delete action. One definition each, so every
//! table stores time and references the same way on PostgreSQL and SQLite.

use sea_orm_migration::prelude::*;

/// `TIMESTAMP WITH TIME ZONE NOT NULL`.
pub(crate) fn timestamp(column: impl IntoIden) -> ColumnDef {
    let mut definition = ColumnDef::new(column);
    definition.timestamp_with_time_zone().not_null();
    definition
}

/// A named foreign key `from_table.from_column → to_table.to_column` with `on_delete`.
pub(crate) fn foreign_key(
    name: &str,
    (from_table, from_column): (impl IntoIden, impl IntoIden),
    (to_table, to_column): (impl IntoIden, impl IntoIden),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from_table, from_column)
        .to(to_table, to_column)
        .on_delete(on_delete)
        .to_owned()
}
