//! The output cache, as stored: successful target outputs of a tenant, by
//! a key the runner computes (see `docs/caching.md`), within the tenant's
//! `cache-bytes` budget.
//!
//! The store does not interpret the key; it keeps each entry's size, when
//! it was last used, and the tenant's total, and evicts the least recently
//! used entries when a write would take the total past the budget. Only
//! outputs are stored: a failed call has nothing to cache.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::error::StoreResult;

/// A stored output, as a lookup returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedOutput {
    /// The key it is stored under.
    pub key: String,
    /// The target that produced it.
    pub target_id: String,
    pub output: Value,
    /// What the target reported with it (token usage, model).
    pub target_metadata: Option<Value>,
    pub trace_id: Option<String>,
    /// Milliseconds the call that produced it took.
    pub latency: f64,
    /// The run whose call produced it.
    pub run_id: String,
    /// Bytes it counts against the budget.
    pub size_bytes: i64,
    /// Lookups that returned it before this one.
    pub hits: i64,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

/// An output to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCachedOutput {
    pub key: String,
    pub target_id: String,
    pub output: Value,
    pub target_metadata: Option<Value>,
    pub trace_id: Option<String>,
    pub latency: f64,
    pub run_id: String,
}

impl NewCachedOutput {
    /// Bytes the entry counts against the tenant's budget: its output,
    /// metadata and trace id as stored (compact JSON), and its key.
    pub fn size_bytes(&self) -> i64 {
        let json = |v: &Value| serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0);
        let bytes = self.key.len()
            + json(&self.output)
            + self.target_metadata.as_ref().map(json).unwrap_or(0)
            + self.trace_id.as_ref().map(String::len).unwrap_or(0);
        bytes as i64
    }
}

/// A tenant's cache: what it holds and its budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    /// Entries stored.
    pub entries: i64,
    /// Bytes they count against the budget.
    pub bytes: i64,
    /// The budget: the tenant's `cache-bytes` limit.
    pub limit_bytes: i64,
}

/// What a write of outputs did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachePut {
    /// Outputs stored (new, or replacing the entry of the same key).
    pub stored: u64,
    /// Outputs not stored because they alone, or together with the rest of
    /// the write, are larger than the whole budget.
    pub too_large: u64,
    /// Older entries evicted to make room.
    pub evicted: u64,
}

/// What clearing a tenant's cache removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheCleared {
    /// Entries removed.
    pub entries: i64,
    /// Bytes they counted.
    pub bytes: i64,
}

/// A tenant's cached target outputs.
#[async_trait]
pub trait OutputCacheStore: Send + Sync + 'static {
    /// The stored outputs among `keys` (unknown keys are left out; the
    /// order is unspecified). Each one returned is marked used now, so
    /// eviction takes it last.
    async fn cached_outputs(&self, tenant: &str, keys: &[String])
    -> StoreResult<Vec<CachedOutput>>;
    /// Stores outputs (an entry of the same key is replaced), in one
    /// transaction. When the tenant's total would pass its `cache-bytes`
    /// limit, the least recently used other entries are evicted first; an
    /// output that cannot fit in the budget is not stored. `NotFound` for
    /// an unknown tenant.
    async fn put_cached_outputs(
        &self,
        tenant: &str,
        outputs: Vec<NewCachedOutput>,
    ) -> StoreResult<CachePut>;
    /// Entries, bytes and budget of the tenant's cache. `NotFound` for an
    /// unknown tenant.
    async fn cache_stats(&self, tenant: &str) -> StoreResult<CacheStats>;
    /// Removes every entry of the tenant's cache.
    async fn clear_cache(&self, tenant: &str) -> StoreResult<CacheCleared>;
    /// How many of run `run_id`'s results reused a cached output (their
    /// `targetMetadata` has a `cached` object). `NotFound` for a run the
    /// tenant does not have.
    async fn cached_result_count(&self, tenant: &str, run_id: &str) -> StoreResult<i64>;
}
