//! `/api/cache`: the output cache of the caller's tenant, the stored target
//! outputs that runs with `cache: true` reuse (see docs/caching.md). Its
//! budget is the tenant's `cache-bytes` limit, which the operator sets.

use assay_store::{CacheCleared, CacheStats};
use axum::Json;
use axum::extract::State;

use crate::error::ApiResult;
use crate::extract::TenantId;
use crate::state::AppState;

/// `GET /api/cache`: entries, bytes and the budget.
pub async fn stats(State(s): State<AppState>, tenant: TenantId) -> ApiResult<Json<CacheStats>> {
    Ok(Json(s.store().cache_stats(&tenant).await?))
}

/// `DELETE /api/cache`: removes every stored output (runs and their results
/// are kept); answers what was removed.
pub async fn clear(State(s): State<AppState>, tenant: TenantId) -> ApiResult<Json<CacheCleared>> {
    let cleared = s.store().clear_cache(&tenant).await?;
    tracing::info!(tenant = %tenant.0, entries = cleared.entries, bytes = cleared.bytes, "output cache cleared");
    Ok(Json(cleared))
}
