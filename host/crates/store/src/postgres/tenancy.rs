//! Tenants as the operator manages them (PostgreSQL): all of it is the shared
//! code in [`crate::shared::tenancy`].

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::StoreResult;
use crate::models::{Page, Paged, PluginRecord};
use crate::shared::tenancy as shared;
use crate::tenancy::{TenancyStore, TenantInfo, TenantLimits, TenantUsage};

#[async_trait]
impl TenancyStore for PostgresStore {
    async fn create_tenant(&self, id: &str, l: &TenantLimits) -> StoreResult<TenantInfo> {
        shared::create(self, id, l).await
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantInfo>> {
        shared::list(self).await
    }

    async fn tenant_limits(&self, id: &str) -> StoreResult<TenantLimits> {
        shared::limits(self, id).await
    }

    async fn set_tenant_limits(&self, id: &str, l: &TenantLimits) -> StoreResult<TenantLimits> {
        shared::set_limits(self, id, l).await
    }

    async fn tenant_usage(&self, id: &str) -> StoreResult<TenantUsage> {
        shared::usage(self, id).await
    }

    async fn list_visible_plugins(
        &self,
        tenant: &str,
        page: Page,
    ) -> StoreResult<Paged<PluginRecord>> {
        shared::visible_plugins(self, tenant, page).await
    }
}
