//! The output cache (SQLite): all of it is the shared code in
//! [`crate::shared::cache`].

use async_trait::async_trait;

use super::SqliteStore;
use crate::cache::{
    CacheCleared, CachePut, CacheStats, CachedOutput, NewCachedOutput, OutputCacheStore,
};
use crate::error::StoreResult;
use crate::shared::cache as shared;

#[async_trait]
impl OutputCacheStore for SqliteStore {
    async fn cached_outputs(
        &self,
        tenant: &str,
        keys: &[String],
    ) -> StoreResult<Vec<CachedOutput>> {
        shared::lookup(self, tenant, keys).await
    }

    async fn put_cached_outputs(
        &self,
        tenant: &str,
        outputs: Vec<NewCachedOutput>,
    ) -> StoreResult<CachePut> {
        shared::put(self, tenant, outputs).await
    }

    async fn cache_stats(&self, tenant: &str) -> StoreResult<CacheStats> {
        shared::stats(self, tenant).await
    }

    async fn clear_cache(&self, tenant: &str) -> StoreResult<CacheCleared> {
        shared::clear(self, tenant).await
    }

    async fn cached_result_count(&self, tenant: &str, run_id: &str) -> StoreResult<i64> {
        shared::cached_results(self, tenant, run_id).await
    }
}
