//! Registered plugins and their component bytes (SQLite): all of it is the
//! shared code in [`crate::shared::plugins`].

use async_trait::async_trait;

use super::SqliteStore;
use crate::error::StoreResult;
use crate::models::*;
use crate::shared::plugins as shared;
use crate::store::PluginStore;

#[async_trait]
impl PluginStore for SqliteStore {
    async fn register_plugin(
        &self,
        tenant: &str,
        record: PluginRecord,
        bytes: Vec<u8>,
    ) -> StoreResult<PluginRecord> {
        shared::register(self, tenant, record, bytes).await
    }

    async fn get_plugin(&self, tenant: &str, id: &str) -> StoreResult<PluginRecord> {
        shared::get(self, tenant, id).await
    }

    async fn plugin_bytes(&self, tenant: &str, id: &str) -> StoreResult<Vec<u8>> {
        shared::bytes(self, tenant, id).await
    }

    async fn list_plugins(&self, tenant: &str, page: Page) -> StoreResult<Paged<PluginRecord>> {
        shared::list(self, tenant, page).await
    }

    async fn delete_plugin(&self, tenant: &str, id: &str) -> StoreResult<()> {
        shared::delete(self, tenant, id).await
    }
}
