//! Mastra's experiment routes: an assay run is a Mastra experiment (same
//! id), so these are views of the runs under Mastra's names and shapes
//! (see [`crate::views::experiment`]).
//!
//! * `GET /api/experiments`, `DELETE /api/experiments/{experimentId}`;
//! * `GET|POST /api/datasets/{datasetId}/experiments`;
//! * `GET|DELETE /api/datasets/{datasetId}/experiments/{experimentId}`;
//! * `GET /api/datasets/{datasetId}/experiments/{experimentId}/results`.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;

use crate::bodies::TriggerRun;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery, PageQuery, TenantId};
use crate::handlers::runs::{accepted, run_of, start_run};
use crate::handlers::{list_view, success};
use crate::state::AppState;
use crate::views;

/// `GET /api/experiments`: every run of the tenant, newest first.
pub async fn list_all(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    list_view(
        "experiments",
        s.store().list_runs(&tenant, None, q.page()).await?,
        views::experiment,
    )
}

/// `GET /api/datasets/{datasetId}/experiments`: the dataset's runs, newest
/// first.
pub async fn list(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    s.store().get_dataset(&tenant, &dataset_id).await?;
    list_view(
        "experiments",
        s.store()
            .list_runs(&tenant, Some(&dataset_id), q.page())
            .await?,
        views::experiment,
    )
}

/// `POST /api/datasets/{datasetId}/experiments`: the run trigger under
/// Mastra's name (same body, same 202 answer, which names the run both
/// `runId` and `experimentId`).
pub async fn trigger(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiJson(body): ApiJson<TriggerRun>,
) -> ApiResult<Response> {
    let run = start_run(&s, &tenant, dataset_id, body).await?;
    let location = format!("/api/datasets/{}/experiments/{}", run.dataset_id, run.id);
    Ok(accepted(&run, &location))
}

/// `GET /api/datasets/{datasetId}/experiments/{experimentId}`.
pub async fn get(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, run_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    let run = run_of(&s, &tenant, &dataset_id, &run_id).await?;
    Ok(Json(views::experiment(&run)?))
}

/// `DELETE /api/datasets/{datasetId}/experiments/{experimentId}`: the run
/// and its results (409 while it runs).
pub async fn delete(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, run_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    run_of(&s, &tenant, &dataset_id, &run_id).await?;
    s.store().delete_run(&tenant, &run_id).await?;
    Ok(success())
}

/// `DELETE /api/experiments/{experimentId}`: the run and its results,
/// whichever dataset it belongs to (409 while it runs).
pub async fn delete_any(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(run_id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    s.store().delete_run(&tenant, &run_id).await?;
    Ok(success())
}

/// `GET /api/datasets/{datasetId}/experiments/{experimentId}/results`: in
/// dataset order, as Mastra experiment results (with assay's `scores`).
pub async fn results(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, run_id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    run_of(&s, &tenant, &dataset_id, &run_id).await?;
    list_view(
        "results",
        s.store().list_results(&tenant, &run_id, q.page()).await?,
        views::experiment_result,
    )
}
