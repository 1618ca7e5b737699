//! `/api/datasets` and `/api/datasets/{datasetId}[/versions]`.

use assay_store::{Dataset, DatasetPatch, NewDataset};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, PageQuery, TenantId};
use crate::handlers::{list_body, success};
use crate::state::AppState;

/// `GET /api/datasets`: newest first.
pub async fn list(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    list_body(
        "datasets",
        s.store().list_datasets(&tenant, q.page()).await?,
    )
}

/// `POST /api/datasets`: `{name, description?, metadata?, inputSchema?, outputSchema?}`.
pub async fn create(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiJson(new): ApiJson<NewDataset>,
) -> ApiResult<(StatusCode, Json<Dataset>)> {
    if new.name.trim().is_empty() {
        return Err(ApiError::invalid_field("name", "`name` must not be empty"));
    }
    assay_store::tenancy::check_new_dataset(s.store().as_ref(), &tenant).await?;
    let dataset = s.store().create_dataset(&tenant, new).await?;
    Ok((StatusCode::CREATED, Json(dataset)))
}

/// `GET /api/datasets/{datasetId}`.
pub async fn get(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
) -> ApiResult<Json<Dataset>> {
    Ok(Json(s.store().get_dataset(&tenant, &dataset_id).await?))
}

/// `PATCH /api/datasets/{datasetId}`: any subset of the create fields
/// (`null` clears an optional one).
pub async fn update(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiJson(patch): ApiJson<DatasetPatch>,
) -> ApiResult<Json<Dataset>> {
    if patch.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::invalid_field("name", "`name` must not be empty"));
    }
    Ok(Json(
        s.store()
            .update_dataset(&tenant, &dataset_id, patch)
            .await?,
    ))
}

/// `DELETE /api/datasets/{datasetId}`: with its items, history and runs
/// (409 while one of its runs is pending or running).
pub async fn delete(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    s.store().delete_dataset(&tenant, &dataset_id).await?;
    Ok(success())
}

/// `GET /api/datasets/{datasetId}/versions`: newest first.
pub async fn versions(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    list_body(
        "versions",
        s.store()
            .list_dataset_versions(&tenant, &dataset_id, q.page())
            .await?,
    )
}
