//! `/api/datasets/{datasetId}/runs...` and `/compare`: trigger, poll,
//! results, summary, cancel, delete, compare.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use assay_runner::compare::{CompareOptions, ItemWindow, compare_runs};
use assay_runner::stats::{DEFAULT_PASS_THRESHOLD, RunStats, summarize_stored};
use assay_runner::{
    RescoreRequest, RunOptions, RunRequest, TargetType, create_rescore, create_run,
};
use assay_store::{ResultFilter, Run, RunResult, ScoreBelow, StoreError};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bodies::{CompareRuns, RescoreRun, TriggerRun};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, PageQuery, ResultsQuery, TenantId};
use crate::handlers::{list_body, success};
use crate::state::AppState;
use crate::views;

/// `GET /api/datasets/{datasetId}/runs`: newest first.
pub async fn list(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    s.store().get_dataset(&tenant, &dataset_id).await?;
    list_body(
        "runs",
        s.store()
            .list_runs(&tenant, Some(&dataset_id), q.page())
            .await?,
    )
}

impl TriggerRun {
    /// The runner's request for `dataset_id`, or a 400 naming the field.
    pub fn into_request(self, dataset_id: String) -> ApiResult<RunRequest> {
        if self.start == Some(false) {
            return Err(ApiError::invalid_field(
                "start",
                "`start: false` (create an experiment without running it) is not supported: \
                 assay runs every experiment it creates",
            ));
        }
        let target_type = TargetType::parse(&self.target_type).ok_or_else(|| {
            ApiError::invalid_field(
                "targetType",
                format!(
                    "unknown targetType `{}`: expected `plugin` (or its aliases `agent`, \
                     `workflow`, `target`) or `scorer`",
                    self.target_type
                ),
            )
        })?;
        if self.target_id.trim().is_empty() {
            return Err(ApiError::invalid_field(
                "targetId",
                "`targetId` must not be empty",
            ));
        }
        let scorer_ids = self.scorer_ids.unwrap_or_default();
        let mut seen = HashSet::new();
        for id in &scorer_ids {
            if !seen.insert(id.as_str()) {
                return Err(ApiError::invalid_field(
                    "scorerIds",
                    format!("scorer `{id}` is listed twice"),
                ));
            }
        }
        let scorer_configs = self.scorer_configs.unwrap_or_default();
        if let Some(id) = scorer_configs.keys().find(|k| !seen.contains(k.as_str())) {
            return Err(ApiError::invalid_field(
                format!("scorerConfigs.{id}"),
                format!("`scorerConfigs` has an entry for `{id}`, which is not in `scorerIds`"),
            ));
        }
        let defaults = RunOptions::default();
        let ms = |v: Option<u64>| v.map(Duration::from_millis);
        let options = RunOptions {
            max_concurrency: self.max_concurrency.unwrap_or(defaults.max_concurrency),
            max_retries: self.max_retries.unwrap_or(defaults.max_retries),
            retry_delay: ms(self.retry_delay).unwrap_or(defaults.retry_delay),
            item_timeout: ms(self.item_timeout),
            target_timeout: ms(self.target_timeout),
            scorer_timeout: ms(self.scorer_timeout),
            max_memory_bytes: self.max_memory_bytes,
            repeat: self.repeat.unwrap_or(defaults.repeat),
            target_config: self.target_config,
            scorer_configs,
            network: self.network.unwrap_or_default(),
            network_from_operator: false,
            cache: self.cache.unwrap_or(false),
        };
        Ok(RunRequest {
            dataset_id,
            version: self.version,
            target_type,
            target_id: self.target_id,
            scorer_ids,
            options,
            run_id: None,
        })
    }
}

/// `POST /api/datasets/{datasetId}/runs`: validates everything, stores the
/// run as `pending`, wakes the scheduler and answers at once (202) with
/// Mastra's summary shape; no item is touched inside the request.
pub async fn trigger(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiJson(body): ApiJson<TriggerRun>,
) -> ApiResult<Response> {
    let run = start_run(&s, &tenant, dataset_id, body).await?;
    let location = format!("/api/datasets/{}/runs/{}", run.dataset_id, run.id);
    Ok(accepted(&run, &location))
}

/// Creates the run of `body` on `dataset_id` (validated up front, stored
/// `pending`) and wakes the scheduler.
pub(crate) async fn start_run(
    s: &AppState,
    tenant: &TenantId,
    dataset_id: String,
    body: TriggerRun,
) -> ApiResult<Run> {
    let request = body.into_request(dataset_id)?;
    let run = create_run(s.store(), s.catalog(), tenant, request).await?;
    s.wake_scheduler();
    tracing::info!(tenant = %tenant.0, run_id = %run.id, total = run.total_items, "run triggered");
    Ok(run)
}

/// `POST /api/datasets/{datasetId}/runs/{runId}/rescore`: a new run, linked
/// to the finished run `runId` (`parentRunId`), grading its stored target
/// outputs with `scorerIds`; stored `pending` and executed in the
/// background like any run (202), never calling the target.
pub async fn rescore(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, run_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RescoreRun>,
) -> ApiResult<Response> {
    let parent = run_of(&s, &tenant, &dataset_id, &run_id).await?;
    let request = RescoreRequest {
        parent_run_id: parent.id,
        scorer_ids: body.scorer_ids,
        scorer_configs: body.scorer_configs.unwrap_or_default(),
        max_concurrency: body.max_concurrency,
        run_id: None,
    };
    let run = create_rescore(s.store(), s.catalog(), &tenant, request).await?;
    s.wake_scheduler();
    tracing::info!(tenant = %tenant.0, run_id = %run.id, parent = %run_id, "re-scoring run triggered");
    let location = format!("/api/datasets/{}/runs/{}", run.dataset_id, run.id);
    Ok(accepted(&run, &location))
}

/// 202 with the trigger summary and `Location: <location>`.
pub(crate) fn accepted(run: &Run, location: &str) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(views::triggered(run))).into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// The run `run_id` if it belongs to `dataset_id` of `tenant`; otherwise a
/// 404 naming the dataset (when it does not exist) or the run.
pub(crate) async fn run_of(
    s: &AppState,
    tenant: &str,
    dataset_id: &str,
    run_id: &str,
) -> ApiResult<Run> {
    match s.store().get_run(tenant, run_id).await {
        Ok(run) if run.dataset_id == dataset_id => return Ok(run),
        Ok(_) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    s.store().get_dataset(tenant, dataset_id).await?;
    Err(ApiError::not_found("Run", run_id))
}

/// `GET /api/datasets/{datasetId}/runs/{runId}`: the bare run (status,
/// counts that grow during the run, timestamps).
pub async fn get(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, run_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Run>> {
    Ok(Json(run_of(&s, &tenant, &dataset_id, &run_id).await?))
}

/// `GET /api/datasets/{datasetId}/runs/{runId}/results`: in dataset
/// (`itemIndex`) order, each with its `scores`.
pub async fn results(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, run_id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ResultsQuery>,
) -> ApiResult<Json<Value>> {
    let run = run_of(&s, &tenant, &dataset_id, &run_id).await?;
    let filter = result_filter(&run, &q)?;
    list_body(
        "results",
        s.store()
            .filter_results(&tenant, &run_id, &filter, q.page())
            .await?,
    )
}

/// The store filter of a results query. `below` needs `scorer`, and the
/// scorer must be one of the run's: a filter that cannot match anything
/// because of a typo is a 400, not an empty page.
fn result_filter(run: &Run, q: &ResultsQuery) -> ApiResult<ResultFilter> {
    let score_below = match (&q.scorer, q.below) {
        (None, None) => None,
        (Some(scorer), _) if !run.scorer_ids.contains(scorer) => {
            return Err(ApiError::invalid_query_field(
                "scorer",
                format!(
                    "run {} has no scorer {scorer:?} (its scorers: {})",
                    run.id,
                    run.scorer_ids.join(", ")
                ),
            ));
        }
        (Some(scorer), Some(below)) if below.is_finite() => Some(ScoreBelow {
            scorer_id: scorer.clone(),
            below,
        }),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_query_field(
                "below",
                "must be a finite number",
            ));
        }
        (Some(_), None) => {
            return Err(ApiError::invalid_query_field(
                "below",
                "`scorer` filters by a score: give `below` too",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid_query_field(
                "scorer",
                "`below` needs the scorer whose score it bounds",
            ));
        }
    };
    Ok(ResultFilter {
        failed_only: q.failed.unwrap_or(false),
        score_below,
    })
}

/// Query of the run summary.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SummaryQuery {
    /// Score at or above which an item passes (default 0.5).
    pub pass_threshold: Option<f64>,
}

/// `GET /api/datasets/{datasetId}/runs/{runId}/summary`: the run's
/// statistics from its stored results (per-scorer means and pass rates,
/// latency percentiles, failures grouped by error), the same figures
/// `assay runs show` prints. Works during a run too (`pendingCount`).
pub async fn summary(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, run_id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> ApiResult<Json<RunStats>> {
    if let Some(p) = q.pass_threshold
        && !p.is_finite()
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "`passThreshold` must be a finite number",
        )
        .with_field("passThreshold"));
    }
    let run = run_of(&s, &tenant, &dataset_id, &run_id).await?;
    let pass_threshold = q.pass_threshold.unwrap_or(DEFAULT_PASS_THRESHOLD);
    let stats = summarize_stored(s.store(), &tenant, &run, pass_threshold).await?;
    Ok(Json(stats))
}

/// `POST /api/datasets/{datasetId}/runs/{runId}/cancel`: a pending run is
/// cancelled at once; a running one stops starting items, cancels the ones
/// in flight and ends `cancelled`. 409 when it already finished.
pub async fn cancel(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, run_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Run>> {
    run_of(&s, &tenant, &dataset_id, &run_id).await?;
    let run = s.cancel_run(&tenant, &run_id).await?;
    tracing::info!(tenant = %tenant.0, run_id, status = %run.status, "run cancel requested");
    Ok(Json(run))
}

/// `DELETE /api/datasets/{datasetId}/runs/{runId}`: with its results; 409
/// while it runs (cancel it first).
pub async fn delete(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath((dataset_id, run_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    run_of(&s, &tenant, &dataset_id, &run_id).await?;
    s.store().delete_run(&tenant, &run_id).await?;
    Ok(success())
}

/// `POST /api/datasets/{datasetId}/compare`: per-scorer stats, deltas,
/// regressions and per-item scores of two runs of the dataset. The body
/// names them `runIdA`/`runIdB` or, as Mastra does,
/// `experimentIdA`/`experimentIdB`; the answer carries Mastra's
/// `baselineId` and, on each item, `input`, `groundTruth` and `results`
/// (per run id: `{output, scores: {scorerId: score}}`, `null` when that run
/// has no result for the item) next to assay's fields.
pub async fn compare(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(dataset_id): ApiPath<String>,
    ApiJson(body): ApiJson<CompareRuns>,
) -> ApiResult<Json<Value>> {
    s.store().get_dataset(&tenant, &dataset_id).await?;
    if let Some(p) = body.pass_threshold
        && !p.is_finite()
    {
        return Err(ApiError::invalid_field(
            "passThreshold",
            "must be a finite number",
        ));
    }
    let limit = body.limit.unwrap_or(ItemWindow::default().limit);
    if limit == 0 || limit > MAX_COMPARE_ITEMS {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be between 1 and {MAX_COMPARE_ITEMS}"),
        ));
    }
    let options = CompareOptions {
        thresholds: body
            .thresholds
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect(),
        pass_threshold: body.pass_threshold,
        items: ItemWindow {
            after_index: body.after_index,
            limit,
            regressed_only: body.regressed_only.unwrap_or(false),
        },
    };
    let a = run_of(&s, &tenant, &dataset_id, &body.run_id_a).await?;
    let b = run_of(&s, &tenant, &dataset_id, &body.run_id_b).await?;
    let result = compare_runs(s.store(), &tenant, &dataset_id, &a.id, &b.id, &options).await?;
    // Mastra's fields need inputs and outputs: read them for this window's
    // items only.
    let window = result
        .items
        .first()
        .zip(result.items.last())
        .map(|(f, l)| (f.item_index, l.item_index));
    let (by_a, by_b) = match window {
        Some((first, last)) => (
            by_item(
                s.store()
                    .results_in_index_range(&tenant, &a.id, first, last)
                    .await?,
            ),
            by_item(
                s.store()
                    .results_in_index_range(&tenant, &b.id, first, last)
                    .await?,
            ),
        ),
        None => Default::default(),
    };
    let mut body = serde_json::to_value(&result).map_err(ApiError::internal)?;
    body["baselineId"] = json!(a.id);
    if let Some(items) = body["items"].as_array_mut() {
        for item in items {
            let id = item["itemId"].as_str().unwrap_or_default().to_string();
            let (ra, rb) = (by_a.get(&id), by_b.get(&id));
            let any = ra.or(rb);
            item["input"] = any.map(|r| r.input.clone()).unwrap_or(Value::Null);
            item["groundTruth"] = any
                .and_then(|r| r.expected_output.clone())
                .unwrap_or(Value::Null);
            let mut results = serde_json::Map::new();
            results.insert(a.id.clone(), mastra_outcome(ra));
            results.insert(b.id.clone(), mastra_outcome(rb));
            item["results"] = Value::Object(results);
        }
    }
    Ok(Json(body))
}

/// Most item pairs one comparison answer lists.
const MAX_COMPARE_ITEMS: usize = 10_000;

/// The results by item id; with repeats, each item's first trial (the
/// results come in item, then trial order).
fn by_item(results: Vec<RunResult>) -> HashMap<String, RunResult> {
    let mut by_item = HashMap::with_capacity(results.len());
    for r in results {
        by_item.entry(r.item_id.clone()).or_insert(r);
    }
    by_item
}

/// One run's outcome on one item as Mastra's comparison shows it.
fn mastra_outcome(r: Option<&RunResult>) -> Value {
    match r {
        None => Value::Null,
        Some(r) => {
            let scores: serde_json::Map<String, Value> = r
                .scores
                .iter()
                .map(|s| (s.scorer_id.clone(), json!(s.score)))
                .collect();
            json!({ "output": r.output, "scores": scores })
        }
    }
}
