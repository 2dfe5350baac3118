//! The vault's one row of state: the lowest ciphertext row-binding layout it still opens. The
//! floor only ever rises (a lower value is ignored), so no caller can reopen an old layout.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};

use super::convert::{to_i16, to_u16};
use crate::entities::vault_state;
use crate::error::StoreError;
use crate::store::Store;

/// The single row's id.
const STATE_ROW: i16 = 1;

impl Store {
    /// The lowest row binding the vault opens; 1 (every layout) when nothing was recorded.
    pub async fn secret_binding_floor(&self) -> Result<u16, StoreError> {
        let row = vault_state::Entity::find_by_id(STATE_ROW)
            .one(&self.db)
            .await?;
        match row {
            Some(row) => to_u16(i32::from(row.binding_floor), "binding floor"),
            None => Ok(1),
        }
    }

    /// Raises the floor to `floor` (never lowers it, even against a concurrent raise). Returns
    /// the floor now in force.
    pub async fn raise_secret_binding_floor(&self, floor: u16) -> Result<u16, StoreError> {
        let stored = to_i16(floor, "binding floor")?;
        let now = super::convert::now();
        let raised = vault_state::Entity::update_many()
            .col_expr(vault_state::Column::BindingFloor, Expr::value(stored))
            .col_expr(vault_state::Column::UpdatedAt, Expr::value(now))
            .filter(vault_state::Column::Id.eq(STATE_ROW))
            .filter(vault_state::Column::BindingFloor.lt(stored))
            .exec(&self.db)
            .await?;
        if raised.rows_affected == 0 {
            // No row yet (or already at or above `floor`): insert, leaving any row alone.
            let row = vault_state::ActiveModel {
                id: Set(STATE_ROW),
                binding_floor: Set(stored),
                updated_at: Set(now),
            };
            vault_state::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(vault_state::Column::Id)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await?;
        }
        self.secret_binding_floor().await
    }
}
