//! `/api/datasets` and `/api/datasets/{datasetId}[/versions]`.

use assay_store::{DatasetPatch, NewDataset};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

use crate::bodies::{CreateDataset, UpdateDataset};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, PageQuery, TenantId};
use crate::handlers::{list_view, success};
use crate::state::AppState;
use crate::views;

/// `GET /api/datasets`: newest first.
pub async fn list(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    list_view(
        "datasets",
        s.store().list_datasets(&tenant, q.page()).await?,
        views::dataset,
    )
}

/// `POST /api/datasets`: `{name, description?, metadata?, inputSchema?,
/// outputSchema? (or groundTruthSchema)}`.
pub async fn create(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiJson(body): ApiJson<CreateDataset>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let new = NewDataset::from(body);
    if new.name.trim().is_empty() {
        return Err(ApiError::invalid_field("name", "`name` must not be empty"));
    }
    assay_store::tenancy::check_new_dataset(s.store().as_ref(), &tenant).await?;
    let dataset = s.store().create_dataset(&tenant, new).await?;
    Ok((StatusCode::CREATED, Json(views::dataset(&dataset)?)))
}

/// `GET /api/datasets/{datasetId}`.
pub async fn get(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(views::dataset(
        &s.store().get_dataset(&tenant, &dataset_id).await?,
    )?))
}

/// `PATCH /api/datasets/{datasetId}`: any subset of the create fields
/// (`null` clears an optional one).
pub async fn update(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateDataset>,
) -> ApiResult<Json<Value>> {
    let patch = DatasetPatch::from(body);
    if patch.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ApiError::invalid_field("name", "`name` must not be empty"));
    }
    let dataset = s
        .store()
        .update_dataset(&tenant, &dataset_id, patch)
        .await?;
    Ok(Json(views::dataset(&dataset)?))
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
    list_view(
        "versions",
        s.store()
            .list_dataset_versions(&tenant, &dataset_id, q.page())
            .await?,
        views::dataset_version,
    )
}
