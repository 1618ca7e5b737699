//! API keys, on any backend.

use super::{Arg, Db, Handle};
use crate::error::{StoreError, StoreResult};
use crate::rows;
use crate::rules::{new_id, now};
use crate::sql;
use crate::tenancy::{ApiKey, NewApiKey};

pub(crate) async fn create<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    new: NewApiKey,
) -> StoreResult<ApiKey> {
    let mut tx = s.begin_write().await?;
    super::tenants::require(DB::conn(&mut tx), &new.tenant_id).await?;
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
        .arg(key.id.as_str())
        .arg(key.tenant_id.as_str())
        .arg(key.name.as_deref())
        .arg(key.role.as_str())
        .arg(key.prefix.as_str())
        .arg(new.token_hash.as_str())
        .arg(DB::time(key.created_at))
        .execute(DB::conn(&mut tx))
        .await?;
    tx.commit().await?;
    Ok(key)
}

pub(crate) async fn by_hash<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    token_hash: &str,
) -> StoreResult<Option<ApiKey>> {
    sqlx::query(sql::keys::BY_HASH)
        .arg(token_hash)
        .fetch_optional(s.reads())
        .await?
        .as_ref()
        .map(rows::api_key)
        .transpose()
}

pub(crate) async fn list<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: Option<&str>,
) -> StoreResult<Vec<ApiKey>> {
    let rows = sqlx::query(sql::keys::LIST)
        .arg(tenant)
        .fetch_all(s.reads())
        .await?;
    rows.iter().map(rows::api_key).collect()
}

pub(crate) async fn revoke<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: Option<&str>,
    id: &str,
) -> StoreResult<ApiKey> {
    let mut tx = s.begin_write().await?;
    let row = sqlx::query(sql::keys::REVOKE)
        .arg(DB::time(now()))
        .arg(id)
        .arg(tenant)
        .fetch_optional(DB::conn(&mut tx))
        .await?
        .ok_or_else(|| StoreError::not_found("API key", id))?;
    tx.commit().await?;
    rows::api_key(&row)
}
