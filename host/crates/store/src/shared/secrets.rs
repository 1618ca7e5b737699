//! Sealed secrets, on any backend.

use super::{Arg, Db, Handle};
use crate::error::{StoreError, StoreResult};
use crate::network::{SealedSecret, SecretInfo, check_secret_name};
use crate::rows::StoredRow;
use crate::rules::now;
use crate::sql;

fn info(r: &impl StoredRow) -> StoreResult<SecretInfo> {
    Ok(SecretInfo {
        name: r.text("name")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub(crate) async fn set<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    secret: SealedSecret,
) -> StoreResult<SecretInfo> {
    check_secret_name(&secret.name)?;
    let mut tx = s.begin_write().await?;
    super::tenants::require(DB::conn(&mut tx), tenant).await?;
    let row = sqlx::query(sql::secrets::UPSERT)
        .arg(tenant)
        .arg(secret.name.as_str())
        .arg(secret.ciphertext.as_slice())
        .arg(secret.nonce.as_slice())
        .arg(DB::time(now()))
        .fetch_one(DB::conn(&mut tx))
        .await?;
    let stored = info(&row)?;
    tx.commit().await?;
    Ok(stored)
}

pub(crate) async fn list<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
) -> StoreResult<Vec<SecretInfo>> {
    let rows = sqlx::query(sql::secrets::LIST)
        .arg(tenant)
        .fetch_all(s.reads())
        .await?;
    rows.iter().map(info).collect()
}

pub(crate) async fn delete<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    name: &str,
) -> StoreResult<()> {
    let mut tx = s.begin_write().await?;
    let done = sqlx::query(sql::secrets::DELETE)
        .arg(tenant)
        .arg(name)
        .execute(DB::conn(&mut tx))
        .await?;
    if DB::rows_affected(&done) == 0 {
        return Err(StoreError::not_found("Secret", name));
    }
    tx.commit().await?;
    Ok(())
}

/// All of the tenant's sealed secrets are read and filtered here: a tenant
/// has few, and one statement reads the same on both databases.
pub(crate) async fn sealed<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    names: &[String],
) -> StoreResult<Vec<SealedSecret>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(sql::secrets::SEALED)
        .arg(tenant)
        .fetch_all(s.reads())
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        let name = r.text("name")?;
        if names.contains(&name) {
            out.push(SealedSecret {
                name,
                ciphertext: r.bytes("ciphertext")?,
                nonce: r.bytes("nonce")?,
            });
        }
    }
    Ok(out)
}
