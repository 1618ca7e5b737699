//! `GET /api/scores/run/{runId}`: Mastra's scores of a run (an experiment's
//! scores are keyed by its id), as `{pagination, scores: [ScoreRowData]}`.

use assay_store::RunResult;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery, PageQuery, TenantId};
use crate::state::AppState;
use crate::views;

/// The handler. Rows are in dataset order, then in the run's scorer order;
/// a scorer that failed on an item has no row (see [`views::score_rows`]).
/// Scores are stored inside their results, so a page is cut out of the
/// run's whole list: the cost grows with the run, not with the page.
pub async fn by_run(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(run_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    let run = s.store().get_run(&tenant, &run_id).await?;
    let mut results: Vec<RunResult> = Vec::new();
    assay_store::for_each_result_page(s.store().as_ref(), &tenant, &run_id, 1000, |page| {
        results.extend(page);
        Ok::<_, ApiError>(())
    })
    .await?;
    results.sort_by_key(|r| r.item_index);
    let rows: Vec<Value> = results
        .iter()
        .flat_map(|r| views::score_rows(&run, r))
        .collect();
    let page = q.page();
    let total = rows.len() as i64;
    let start = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let scores: Vec<Value> = rows
        .into_iter()
        .skip(start)
        .take(page.limit() as usize)
        .collect();
    let paged = page.wrap(scores, total);
    Ok(Json(json!({
        "pagination": {
            "total": paged.total,
            "page": paged.page,
            "perPage": paged.per_page,
            "hasMore": paged.has_more,
        },
        "scores": paged.items,
    })))
}
