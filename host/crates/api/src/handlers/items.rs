//! `/api/datasets/{datasetId}/items...`: items, bulk operations, history.

use assay_store::{DatasetItem, ItemPatch, ItemQuery, ItemVersion, NewItem};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, ItemsQuery, PageQuery, TenantId};
use crate::handlers::{list_body, success};
use crate::state::AppState;

/// `GET /api/datasets/{datasetId}/items?page&perPage&version&search`:
/// in dataset order, live or at a past version.
pub async fn list(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ItemsQuery>,
) -> ApiResult<Json<Value>> {
    let query = ItemQuery {
        version: q.version,
        search: q.search.filter(|s| !s.is_empty()),
        page: PageQuery {
            page: q.page,
            per_page: q.per_page,
        }
        .page(),
    };
    list_body(
        "items",
        s.store().list_items(&tenant, &dataset_id, query).await?,
    )
}

/// `POST /api/datasets/{datasetId}/items`: `{input, expectedOutput?, context?}`.
pub async fn add(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiJson(item): ApiJson<NewItem>,
) -> ApiResult<(StatusCode, Json<DatasetItem>)> {
    let mut added = s
        .store()
        .add_items(&tenant, &dataset_id, vec![item])
        .await?;
    let item = added
        .pop()
        .ok_or_else(|| ApiError::internal("add_items returned no item"))?;
    Ok((StatusCode::CREATED, Json(item)))
}

/// `GET /api/datasets/{datasetId}/items/{itemId}`.
pub async fn get(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, item_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<DatasetItem>> {
    Ok(Json(
        s.store().get_item(&tenant, &dataset_id, &item_id).await?,
    ))
}

/// `PATCH /api/datasets/{datasetId}/items/{itemId}`: `{input?, expectedOutput?, context?}`.
pub async fn update(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, item_id)): ApiPath<(String, String)>,
    ApiJson(patch): ApiJson<ItemPatch>,
) -> ApiResult<Json<DatasetItem>> {
    Ok(Json(
        s.store()
            .update_item(&tenant, &dataset_id, &item_id, patch)
            .await?,
    ))
}

/// `DELETE /api/datasets/{datasetId}/items/{itemId}`.
pub async fn delete(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, item_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    let deleted = s
        .store()
        .delete_items(&tenant, &dataset_id, std::slice::from_ref(&item_id))
        .await?;
    if deleted == 0 {
        return Err(ApiError::not_found("Item", &item_id));
    }
    Ok(success())
}

/// Body of `POST .../items/bulk`.
#[derive(Debug, Deserialize)]
pub struct BulkAdd {
    /// The items, added in this order with one version bump.
    pub items: Vec<NewItem>,
}

/// `POST /api/datasets/{datasetId}/items/bulk`: `{items: [...]}` →
/// `{items, count}`. All or nothing.
pub async fn bulk_add(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiJson(body): ApiJson<BulkAdd>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let items = s
        .store()
        .add_items(&tenant, &dataset_id, body.items)
        .await?;
    let count = items.len();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "items": items, "count": count })),
    ))
}

/// Body of `DELETE .../items/bulk`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkDelete {
    /// Ids of the items to delete (unknown ids are ignored).
    pub item_ids: Vec<String>,
}

/// `DELETE /api/datasets/{datasetId}/items/bulk`: `{itemIds}` →
/// `{success, deletedCount}` (the number actually deleted).
pub async fn bulk_delete(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiJson(body): ApiJson<BulkDelete>,
) -> ApiResult<Json<Value>> {
    let deleted = s
        .store()
        .delete_items(&tenant, &dataset_id, &body.item_ids)
        .await?;
    Ok(Json(json!({ "success": true, "deletedCount": deleted })))
}

/// `GET /api/datasets/{datasetId}/items/{itemId}/versions`: newest first,
/// deleted items included.
pub async fn versions(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, item_id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    list_body(
        "versions",
        s.store()
            .list_item_versions(&tenant, &dataset_id, &item_id, q.page())
            .await?,
    )
}

/// `GET /api/datasets/{datasetId}/items/{itemId}/versions/{versionNumber}`.
pub async fn version(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, item_id, n)): ApiPath<(String, String, i64)>,
) -> ApiResult<Json<ItemVersion>> {
    Ok(Json(
        s.store()
            .get_item_version(&tenant, &dataset_id, &item_id, n)
            .await?,
    ))
}
