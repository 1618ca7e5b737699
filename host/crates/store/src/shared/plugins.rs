//! Registered plugins and their component bytes, on any backend.

use sqlx::{Encode, Executor, Type};

use super::{Db, Handle};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rows::{self, StoredRow};
use crate::rules::now;
use crate::sql;

pub(crate) async fn register<DB, S>(
    s: &S,
    tenant: &str,
    record: PluginRecord,
    bytes: Vec<u8>,
) -> StoreResult<PluginRecord>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> &'t [u8]: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let rec = PluginRecord {
        tenant_id: tenant.to_string(),
        size: bytes.len() as i64,
        created_at: now(),
        ..record
    };
    let mut tx = s.begin_write().await?;
    super::tenants::require(&mut *tx, tenant).await?;
    sqlx::query(sql::plugins::UPSERT)
        .bind(tenant)
        .bind(rec.id.as_str())
        .bind(rec.kind.as_str())
        .bind(rec.name.as_str())
        .bind(rec.description.as_str())
        .bind(rec.digest.as_str())
        .bind(rec.contract_version.as_str())
        .bind(rec.size)
        .bind(bytes.as_slice())
        .bind(DB::time(rec.created_at))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rec)
}

pub(crate) async fn get<DB, S>(s: &S, tenant: &str, id: &str) -> StoreResult<PluginRecord>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let row = sqlx::query(sql::plugins::GET)
        .bind(tenant)
        .bind(id)
        .fetch_optional(s.reads())
        .await?
        .ok_or_else(|| StoreError::not_found("Plugin", id))?;
    rows::plugin(&row)
}

pub(crate) async fn bytes<DB, S>(s: &S, tenant: &str, id: &str) -> StoreResult<Vec<u8>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let row = sqlx::query(sql::plugins::BYTES)
        .bind(tenant)
        .bind(id)
        .fetch_optional(s.reads())
        .await?
        .ok_or_else(|| StoreError::not_found("Plugin", id))?;
    row.bytes("bytes")
}

pub(crate) async fn list<DB, S>(s: &S, tenant: &str, page: Page) -> StoreResult<Paged<PluginRecord>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let total = sqlx::query(sql::plugins::COUNT)
        .bind(tenant)
        .fetch_one(s.reads())
        .await?
        .int_at(0)?;
    let rows = sqlx::query(sql::plugins::LIST)
        .bind(tenant)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(s.reads())
        .await?;
    let items = rows.iter().map(rows::plugin).collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}

pub(crate) async fn delete<DB, S>(s: &S, tenant: &str, id: &str) -> StoreResult<()>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let mut tx = s.begin_write().await?;
    let done = sqlx::query(sql::plugins::DELETE)
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if DB::rows_affected(&done) == 0 {
        return Err(StoreError::not_found("Plugin", id));
    }
    Ok(())
}
