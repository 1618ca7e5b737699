//! `/health` and `/api/openapi.json`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// `GET /health` and `GET /api/health`: 200 `{status: "ok", ...}` when the
/// database answers, 503 otherwise. `activeRuns` counts the runs executing
/// in this process; `executesRuns` is false on an API-only node (`assay
/// serve --no-execute`), whose runs are executed by workers.
pub async fn health(State(s): State<AppState>) -> (StatusCode, Json<Value>) {
    let backend = s.store().backend();
    match s.store().get_tenant(assay_store::DEFAULT_TENANT).await {
        Ok(_) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "database": backend,
                "activeRuns": s.active_runs(),
                "executesRuns": s.executes_runs(),
            })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "message": "the database does not answer",
                    "code": "unavailable",
                    "database": backend,
                })),
            )
        }
    }
}

/// `GET /api/openapi.json`: the OpenAPI 3.1 document of every route.
pub async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
