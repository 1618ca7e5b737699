//! Registered plugins and their component bytes (SQLite).

use async_trait::async_trait;

use super::SqliteStore;
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rows;
use crate::rules::{now, to_ms};
use crate::sql;
use crate::store::PluginStore;

#[async_trait]
impl PluginStore for SqliteStore {
    async fn register_plugin(
        &self,
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
        let mut tx = self.write_tx().await?;
        super::tenants::require(&mut *tx, tenant).await?;
        sqlx::query(sql::plugins::UPSERT)
            .bind(tenant)
            .bind(&rec.id)
            .bind(rec.kind.as_str())
            .bind(&rec.name)
            .bind(&rec.description)
            .bind(&rec.digest)
            .bind(&rec.contract_version)
            .bind(rec.size)
            .bind(&bytes)
            .bind(to_ms(rec.created_at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn get_plugin(&self, tenant: &str, id: &str) -> StoreResult<PluginRecord> {
        let row = sqlx::query(sql::plugins::GET)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::not_found("Plugin", id))?;
        rows::plugin(&row)
    }

    async fn plugin_bytes(&self, tenant: &str, id: &str) -> StoreResult<Vec<u8>> {
        sqlx::query_scalar(sql::plugins::BYTES)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::not_found("Plugin", id))
    }

    async fn list_plugins(&self, tenant: &str, page: Page) -> StoreResult<Paged<PluginRecord>> {
        let total: i64 = sqlx::query_scalar(sql::plugins::COUNT)
            .bind(tenant)
            .fetch_one(&self.reader)
            .await?;
        let rows = sqlx::query(sql::plugins::LIST)
            .bind(tenant)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&self.reader)
            .await?;
        let items = rows.iter().map(rows::plugin).collect::<StoreResult<_>>()?;
        Ok(page.wrap(items, total))
    }

    async fn delete_plugin(&self, tenant: &str, id: &str) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(sql::plugins::DELETE)
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        if n == 0 {
            return Err(StoreError::not_found("Plugin", id));
        }
        Ok(())
    }
}
