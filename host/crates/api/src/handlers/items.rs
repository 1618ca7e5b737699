//! `/api/datasets/{datasetId}/items...`: items, bulk (and Mastra's batch)
//! operations, history.

use assay_store::{ItemPatch, ItemQuery, ItemVersion, NewItem, Page};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::bodies::{AddItem, AddItems, DeleteItems, UpdateItem};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, ItemsQuery, PageQuery, TenantId};
use crate::handlers::{list_body, list_view, success};
use crate::state::AppState;
use crate::views;

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
    list_view(
        "items",
        s.store().list_items(&tenant, &dataset_id, query).await?,
        views::item,
    )
}

/// `POST /api/datasets/{datasetId}/items`: `{input, expectedOutput? (or
/// groundTruth), context?}`.
pub async fn add(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiJson(item): ApiJson<AddItem>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut added = s
        .store()
        .add_items(&tenant, &dataset_id, vec![NewItem::from(item)])
        .await?;
    let item = added
        .pop()
        .ok_or_else(|| ApiError::internal("add_items returned no item"))?;
    Ok((StatusCode::CREATED, Json(views::item(&item)?)))
}

/// `GET /api/datasets/{datasetId}/items/{itemId}`.
pub async fn get(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, item_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(views::item(
        &s.store().get_item(&tenant, &dataset_id, &item_id).await?,
    )?))
}

/// `PATCH /api/datasets/{datasetId}/items/{itemId}`: `{input?,
/// expectedOutput? (or groundTruth), context?}`. A patch naming no field
/// changes nothing and records no version: it answers the item as it is.
pub async fn update(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, item_id)): ApiPath<(String, String)>,
    ApiJson(patch): ApiJson<UpdateItem>,
) -> ApiResult<Json<Value>> {
    let item = if patch.is_empty() {
        s.store().get_item(&tenant, &dataset_id, &item_id).await?
    } else {
        s.store()
            .update_item(&tenant, &dataset_id, &item_id, ItemPatch::from(patch))
            .await?
    };
    Ok(Json(views::item(&item)?))
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

/// `POST /api/datasets/{datasetId}/items/bulk` (and Mastra's
/// `.../items/batch`): `{items: [...]}` → `{items, count}`. All or nothing,
/// one version.
pub async fn bulk_add(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiJson(body): ApiJson<AddItems>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let new = body.items.into_iter().map(NewItem::from).collect();
    let items = s.store().add_items(&tenant, &dataset_id, new).await?;
    let count = items.len();
    let items = items
        .iter()
        .map(views::item)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "items": items, "count": count })),
    ))
}

/// `DELETE /api/datasets/{datasetId}/items/bulk` (and Mastra's
/// `.../items/batch`): `{itemIds}` → `{success, deletedCount}` (the number
/// actually deleted).
pub async fn bulk_delete(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiJson(body): ApiJson<DeleteItems>,
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

/// Every version of an item, newest first (its history is short: one entry
/// per change of that item).
async fn all_versions(
    s: &AppState,
    tenant: &str,
    dataset_id: &str,
    item_id: &str,
) -> ApiResult<Vec<ItemVersion>> {
    let mut out = Vec::new();
    for page in 0.. {
        let paged = s
            .store()
            .list_item_versions(tenant, dataset_id, item_id, Page::new(page, 100))
            .await?;
        out.extend(paged.items);
        if !paged.has_more {
            break;
        }
    }
    Ok(out)
}

/// `versions` (newest first) as history entries, each with its `validTo`.
fn history(versions: &[ItemVersion]) -> ApiResult<Vec<Value>> {
    let Some(first) = versions.last() else {
        return Ok(Vec::new());
    };
    let mut newer: Option<i64> = None;
    let mut out = Vec::with_capacity(versions.len());
    for v in versions {
        let valid_to = if v.is_deleted { None } else { newer };
        out.push(views::history_entry(v, valid_to, &first.created_at)?);
        newer = Some(v.dataset_version);
    }
    Ok(out)
}

/// `GET /api/datasets/{datasetId}/items/{itemId}/history` (Mastra's item
/// history): `{history: [...]}`, every version newest first, tombstones
/// included.
pub async fn item_history(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, item_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    let versions = all_versions(&s, &tenant, &dataset_id, &item_id).await?;
    Ok(Json(json!({ "history": history(&versions)? })))
}

/// `GET /api/datasets/{datasetId}/items/{itemId}/versions/{datasetVersion}`:
/// the item as it was at dataset version `datasetVersion` (the number is a
/// dataset version, as in Mastra; each entry of `.../versions` carries both
/// its `versionNumber` and its `datasetVersion`). 404 when the item did not
/// exist at that version (not yet added, or deleted by then).
pub async fn version(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, item_id, dataset_version)): ApiPath<(String, String, i64)>,
) -> ApiResult<Json<Value>> {
    let dataset = s.store().get_dataset(&tenant, &dataset_id).await?;
    let versions = all_versions(&s, &tenant, &dataset_id, &item_id).await?;
    let entries = history(&versions)?;
    let at = versions
        .iter()
        .zip(entries)
        .find(|(v, _)| v.dataset_version <= dataset_version);
    match at {
        Some((v, entry)) if !v.is_deleted && dataset_version <= dataset.version => Ok(Json(entry)),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("Item {item_id} does not exist at dataset version {dataset_version}"),
        )),
    }
}
