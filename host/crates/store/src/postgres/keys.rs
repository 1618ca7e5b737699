//! API keys (PostgreSQL).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStore;
use crate::error::{StoreError, StoreResult};
use crate::rules::{new_id, now};
use crate::tenancy::{ApiKey, ApiKeyStore, NewApiKey, Role};

macro_rules! key_cols {
    () => {
        "id, tenant_id, name, role, prefix, created_at, revoked_at"
    };
}

fn key(r: &PgRow) -> StoreResult<ApiKey> {
    let role: String = r.try_get("role")?;
    Ok(ApiKey {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role `{role}`")))?,
        prefix: r.try_get("prefix")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

#[async_trait]
impl ApiKeyStore for PostgresStore {
    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey> {
        let mut tx = self.tx().await?;
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
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.id)
        .bind(&key.tenant_id)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(&key.prefix)
        .bind(&new.token_hash)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    async fn api_key_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiKey>> {
        sqlx::query(concat!(
            "SELECT ",
            key_cols!(),
            " FROM api_keys WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(key)
        .transpose()
    }

    async fn list_api_keys(&self, tenant: Option<&str>) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_cols!(),
            " FROM api_keys WHERE ($1::text IS NULL OR tenant_id = $1) \
             ORDER BY tenant_id, created_at, id"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key).collect()
    }

    async fn revoke_api_key(&self, tenant: Option<&str>, id: &str) -> StoreResult<ApiKey> {
        let row = sqlx::query(concat!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE id = $2 AND ($3::text IS NULL OR tenant_id = $3) RETURNING ",
            key_cols!()
        ))
        .bind(now())
        .bind(id)
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found("API key", id))?;
        key(&row)
    }
}
