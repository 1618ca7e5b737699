//! API keys (PostgreSQL): all of it is the shared code in
//! [`crate::shared::keys`].

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::StoreResult;
use crate::shared::keys as shared;
use crate::tenancy::{ApiKey, ApiKeyStore, NewApiKey};

#[async_trait]
impl ApiKeyStore for PostgresStore {
    async fn create_api_key(&self, new: NewApiKey) -> StoreResult<ApiKey> {
        shared::create(self, new).await
    }

    async fn api_key_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiKey>> {
        shared::by_hash(self, token_hash).await
    }

    async fn list_api_keys(&self, tenant: Option<&str>) -> StoreResult<Vec<ApiKey>> {
        shared::list(self, tenant).await
    }

    async fn revoke_api_key(&self, tenant: Option<&str>, id: &str) -> StoreResult<ApiKey> {
        shared::revoke(self, tenant, id).await
    }
}
