//! API keys (SQLite).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use crate::error::{StoreError, StoreResult};
use crate::rules::{from_ms, new_id, now, to_ms};
use crate::tenancy::{ApiKey, ApiKeyStore, NewApiKey, Role};

macro_rules! key_cols {
    () => {
        "id, tenant_id, name, role, prefix, created_at, revoked_at"
    };
}

fn key(r: &SqliteRow) -> StoreResult<ApiKey> {
    let role: String = r.try_get("role")?;
    Ok(ApiKey {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role `{role}`")))?,
        prefix: r.try_get("prefix")?,
        created_at: from_ms(r.try_get("created_at")?),
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_ms),
    })
}

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey> {
        let mut tx = self.write_tx().await?;
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
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, role, prefix, token_hash, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.tenant_id)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(&key.prefix)
        .bind(&new.token_hash)
        .bind(to_ms(key.created_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    async fn api_key_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiKey>> {
        sqlx::query(concat!(
            "SELECT ",
            key_cols!(),
            " FROM api_keys WHERE token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(key)
        .transpose()
    }

    async fn list_api_keys(&self, tenant: Option<&str>) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_cols!(),
            " FROM api_keys WHERE (? IS NULL OR tenant_id = ?) \
             ORDER BY tenant_id, created_at, id"
        ))
        .bind(tenant)
        .bind(tenant)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(key).collect()
    }

    async fn revoke_api_key(&self, tenant: Option<&str>, id: &str) -> StoreResult<ApiKey> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) \
             WHERE id = ? AND (? IS NULL OR tenant_id = ?)",
        )
        .bind(to_ms(now()))
        .bind(id)
        .bind(tenant)
        .bind(tenant)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found("API key", id));
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            key_cols!(),
            " FROM api_keys WHERE id = ?"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        key(&row)
    }
}
