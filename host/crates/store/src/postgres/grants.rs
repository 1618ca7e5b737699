//! Network grants (PostgreSQL): all of it is the shared code in
//! [`crate::shared::grants`].

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::StoreResult;
use crate::network::{GrantStore, PluginGrant};
use crate::shared::grants as shared;

#[async_trait]
impl GrantStore for PostgresStore {
    async fn set_plugin_grant(
        &self,
        tenant: &str,
        plugin_id: &str,
        grant_json: &str,
        granted_by: &str,
    ) -> StoreResult<PluginGrant> {
        shared::set(self, tenant, plugin_id, grant_json, granted_by).await
    }

    async fn get_plugin_grant(
        &self,
        tenant: &str,
        plugin_id: &str,
    ) -> StoreResult<Option<PluginGrant>> {
        shared::get(self, tenant, plugin_id).await
    }

    async fn delete_plugin_grant(&self, tenant: &str, plugin_id: &str) -> StoreResult<()> {
        shared::delete(self, tenant, plugin_id).await
    }
}
