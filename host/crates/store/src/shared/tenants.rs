//! Tenants, on any backend.

use sqlx::Executor;

use super::{Arg, Db, Handle};
use crate::error::{StoreError, StoreResult};
use crate::models::Tenant;
use crate::rows;
use crate::sql;

/// `NotFound` unless tenant `id` exists. Where rows are locked
/// (PostgreSQL), it also keeps the tenant from being deleted until the
/// transaction ends.
pub(crate) async fn require<'e, DB, E>(ex: E, id: &str) -> StoreResult<()>
where
    DB: Db,
    E: Executor<'e, Database = DB>,
{
    let sql = if DB::ROW_LOCKS {
        sql::tenants::EXISTS_FOR_SHARE
    } else {
        sql::tenants::EXISTS
    };
    match sqlx::query(sql).arg(id).fetch_optional(ex).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::not_found("Tenant", id)),
    }
}

pub(crate) async fn get<DB: Db, S: Handle<Db = DB>>(s: &S, id: &str) -> StoreResult<Tenant> {
    let row = sqlx::query(sql::tenants::GET)
        .arg(id)
        .fetch_optional(s.reads())
        .await?
        .ok_or_else(|| StoreError::not_found("Tenant", id))?;
    rows::tenant(&row)
}
