//! API keys, on any backend.

use sqlx::{Encode, Executor, Type};

use super::{Db, Handle};
use crate::error::{StoreError, StoreResult};
use crate::rows;
use crate::rules::{new_id, now};
use crate::sql;
use crate::tenancy::{ApiKey, NewApiKey};

pub(crate) async fn create<DB, S>(s: &S, new: NewApiKey) -> StoreResult<ApiKey>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> Option<&'t str>: Encode<'t, DB> + Type<DB>,
{
    let mut tx = s.begin_write().await?;
    super::tenants::require(&mut *tx, &new.tenant_id).await?;
    let key = ApiKey {
        id: new_id(),
        tenant_id: new.tenant_id,
        name: new.name,
        role: new.role,
        prefix: new.prefix,
        created_at: now(),
        revoked_at: None,
    };
    sqlx::query(sql::keys::INSERT)
        .bind(key.id.as_str())
        .bind(key.tenant_id.as_str())
        .bind(key.name.as_deref())
        .bind(key.role.as_str())
        .bind(key.prefix.as_str())
        .bind(new.token_hash.as_str())
        .bind(DB::time(key.created_at))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(key)
}

pub(crate) async fn by_hash<DB, S>(s: &S, token_hash: &str) -> StoreResult<Option<ApiKey>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    sqlx::query(sql::keys::BY_HASH)
        .bind(token_hash)
        .fetch_optional(s.reads())
        .await?
        .as_ref()
        .map(rows::api_key)
        .transpose()
}

pub(crate) async fn list<DB, S>(s: &S, tenant: Option<&str>) -> StoreResult<Vec<ApiKey>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> Option<&'t str>: Encode<'t, DB> + Type<DB>,
{
    let rows = sqlx::query(sql::keys::LIST)
        .bind(tenant)
        .fetch_all(s.reads())
        .await?;
    rows.iter().map(rows::api_key).collect()
}

pub(crate) async fn revoke<DB, S>(s: &S, tenant: Option<&str>, id: &str) -> StoreResult<ApiKey>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> Option<&'t str>: Encode<'t, DB> + Type<DB>,
{
    let mut tx = s.begin_write().await?;
    let row = sqlx::query(sql::keys::REVOKE)
        .bind(DB::time(now()))
        .bind(id)
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::not_found("API key", id))?;
    tx.commit().await?;
    rows::api_key(&row)
}
