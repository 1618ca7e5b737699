//! Registered plugins and their component bytes, on any backend.

use super::tenancy::Admission;
use super::{Arg, Db, Handle, paged};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rows::{self, StoredRow};
use crate::rules::now;
use crate::sql;

pub(crate) async fn register<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    record: PluginRecord,
    bytes: Vec<u8>,
) -> StoreResult<PluginRecord> {
    let rec = PluginRecord {
        tenant_id: tenant.to_string(),
        size: bytes.len() as i64,
        created_at: now(),
        ..record
    };
    let mut tx = s.begin_write().await?;
    let admission = Admission::Plugin {
        id: &rec.id,
        size: rec.size,
    };
    super::tenancy::admit::<DB>(&mut tx, tenant, admission).await?;
    sqlx::query(sql::plugins::UPSERT)
        .arg(tenant)
        .arg(rec.id.as_str())
        .arg(rec.kind.as_str())
        .arg(rec.name.as_str())
        .arg(rec.description.as_str())
        .arg(rec.digest.as_str())
        .arg(rec.contract_version.as_str())
        .arg(rec.size)
        .arg(bytes.as_slice())
        .arg(DB::time(rec.created_at))
        .execute(DB::conn(&mut tx))
        .await?;
    tx.commit().await?;
    Ok(rec)
}

pub(crate) async fn get<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    id: &str,
) -> StoreResult<PluginRecord> {
    let row = sqlx::query(sql::plugins::GET)
        .arg(tenant)
        .arg(id)
        .fetch_optional(s.reads())
        .await?
        .ok_or_else(|| StoreError::not_found("Plugin", id))?;
    rows::plugin(&row)
}

pub(crate) async fn bytes<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    id: &str,
) -> StoreResult<Vec<u8>> {
    let row = sqlx::query(sql::plugins::BYTES)
        .arg(tenant)
        .arg(id)
        .fetch_optional(s.reads())
        .await?
        .ok_or_else(|| StoreError::not_found("Plugin", id))?;
    row.bytes("bytes")
}

pub(crate) async fn list<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    page: Page,
) -> StoreResult<Paged<PluginRecord>> {
    paged(
        s,
        (sql::plugins::COUNT, sql::plugins::LIST),
        |q| q.arg(tenant),
        page,
        rows::plugin,
    )
    .await
}

pub(crate) async fn delete<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    id: &str,
) -> StoreResult<()> {
    let mut tx = s.begin_write().await?;
    let done = sqlx::query(sql::plugins::DELETE)
        .arg(tenant)
        .arg(id)
        .execute(DB::conn(&mut tx))
        .await?;
    if DB::rows_affected(&done) == 0 {
        return Err(StoreError::not_found("Plugin", id));
    }
    sqlx::query(sql::grants::DELETE_OF_PLUGIN)
        .arg(tenant)
        .arg(id)
        .execute(DB::conn(&mut tx))
        .await?;
    tx.commit().await?;
    Ok(())
}
