//! Decoding PostgreSQL rows into models, and the column lists that go with
//! them.

use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use crate::error::{StoreError, StoreResult};
use crate::models::*;

/// Columns of `datasets` read by [`dataset`].
macro_rules! dataset_cols {
    () => {
        "id, tenant_id, name, description, metadata, input_schema, output_schema, version, \
         item_count, created_at, updated_at"
    };
}
/// Columns of `item_versions` read by [`item`] (aliased `iv`).
macro_rules! item_cols {
    () => {
        "iv.item_id, iv.dataset_id, iv.valid_from, iv.position, iv.input, iv.expected_output, \
         iv.context, iv.item_created_at, iv.created_at"
    };
}
/// Columns of `item_versions` read by [`item_version`].
macro_rules! item_version_cols {
    () => {
        "item_id, dataset_id, version_number, valid_from, input, expected_output, context, \
         is_deleted, created_at"
    };
}
/// Columns of `runs` read by [`run`].
macro_rules! run_cols {
    () => {
        "id, tenant_id, dataset_id, dataset_version, target_type, target_id, scorer_ids, status, \
         total_items, succeeded_count, failed_count, skipped_count, config, error, \
         cancel_requested, started_at, completed_at, created_at, updated_at"
    };
}
/// Columns of `results` read by [`result`].
macro_rules! result_cols {
    () => {
        "seq, id, run_id, item_id, item_index, item_version, input, output, expected_output, \
         latency, error, error_kind, started_at, completed_at, retry_count, trace_id, logs, \
         created_at"
    };
}
/// Columns of `plugins` read by [`plugin`].
macro_rules! plugin_cols {
    () => {
        "tenant_id, id, kind, name, description, digest, contract_version, size, created_at"
    };
}
pub(crate) use {dataset_cols, item_cols, item_version_cols, plugin_cols, result_cols, run_cols};

/// A JSON value to bind to a `jsonb` parameter.
pub fn j(v: &Value) -> Json<&Value> {
    Json(v)
}

/// An optional JSON value to bind to a `jsonb` parameter.
pub fn jo(v: Option<&Value>) -> Option<Json<&Value>> {
    v.map(Json)
}

fn json(r: &PgRow, col: &str) -> StoreResult<Option<Value>> {
    Ok(r.try_get::<Option<Json<Value>>, _>(col)?.map(|j| j.0))
}

fn json_req(r: &PgRow, col: &str) -> StoreResult<Value> {
    Ok(r.try_get::<Json<Value>, _>(col)?.0)
}

pub fn dataset(r: &PgRow) -> StoreResult<Dataset> {
    Ok(Dataset {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        metadata: json(r, "metadata")?,
        input_schema: json(r, "input_schema")?,
        output_schema: json(r, "output_schema")?,
        version: r.try_get("version")?,
        item_count: r.try_get("item_count")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub fn item(r: &PgRow) -> StoreResult<DatasetItem> {
    Ok(DatasetItem {
        id: r.try_get("item_id")?,
        dataset_id: r.try_get("dataset_id")?,
        version: r.try_get("valid_from")?,
        position: r.try_get("position")?,
        input: json_req(r, "input")?,
        expected_output: json(r, "expected_output")?,
        context: json(r, "context")?,
        created_at: r.try_get("item_created_at")?,
        updated_at: r.try_get("created_at")?,
    })
}

pub fn item_version(r: &PgRow) -> StoreResult<ItemVersion> {
    Ok(ItemVersion {
        item_id: r.try_get("item_id")?,
        dataset_id: r.try_get("dataset_id")?,
        version_number: r.try_get("version_number")?,
        dataset_version: r.try_get("valid_from")?,
        snapshot: ItemSnapshot {
            input: json_req(r, "input")?,
            expected_output: json(r, "expected_output")?,
            context: json(r, "context")?,
        },
        is_deleted: r.try_get("is_deleted")?,
        created_at: r.try_get("created_at")?,
    })
}

pub fn dataset_version(r: &PgRow) -> StoreResult<DatasetVersion> {
    Ok(DatasetVersion {
        dataset_id: r.try_get("dataset_id")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        change: r.try_get("change")?,
    })
}

pub fn run(r: &PgRow) -> StoreResult<Run> {
    let status: String = r.try_get("status")?;
    Ok(Run {
        id: r.try_get("id")?,
        dataset_id: r.try_get("dataset_id")?,
        dataset_version: r.try_get("dataset_version")?,
        target_type: r.try_get("target_type")?,
        target_id: r.try_get("target_id")?,
        scorer_ids: r.try_get::<Json<Vec<String>>, _>("scorer_ids")?.0,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown run status `{status}`")))?,
        total_items: r.try_get("total_items")?,
        succeeded_count: r.try_get("succeeded_count")?,
        failed_count: r.try_get("failed_count")?,
        skipped_count: r.try_get("skipped_count")?,
        config: json_req(r, "config")?,
        error: r.try_get("error")?,
        cancel_requested: r.try_get("cancel_requested")?,
        started_at: r.try_get("started_at")?,
        completed_at: r.try_get("completed_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A result row without its scores, and its sequence number.
pub fn result(r: &PgRow) -> StoreResult<(i64, RunResult)> {
    Ok((
        r.try_get("seq")?,
        RunResult {
            id: r.try_get("id")?,
            run_id: r.try_get("run_id")?,
            item_id: r.try_get("item_id")?,
            item_index: r.try_get("item_index")?,
            item_version: r.try_get("item_version")?,
            input: json_req(r, "input")?,
            output: json(r, "output")?,
            expected_output: json(r, "expected_output")?,
            latency: r.try_get("latency")?,
            error: r.try_get("error")?,
            error_kind: r.try_get("error_kind")?,
            started_at: r.try_get("started_at")?,
            completed_at: r.try_get("completed_at")?,
            retry_count: r.try_get("retry_count")?,
            trace_id: r.try_get("trace_id")?,
            logs: json(r, "logs")?,
            scores: Vec::new(),
            created_at: r.try_get("created_at")?,
        },
    ))
}

/// A score row and the item it belongs to.
pub fn score(r: &PgRow) -> StoreResult<(String, ScoreRow)> {
    Ok((
        r.try_get("item_id")?,
        ScoreRow {
            scorer_id: r.try_get("scorer_id")?,
            scorer_name: r.try_get("scorer_name")?,
            score: r.try_get("score")?,
            reason: r.try_get("reason")?,
            error: r.try_get("error")?,
            metadata: json(r, "metadata")?,
        },
    ))
}

pub fn plugin(r: &PgRow) -> StoreResult<PluginRecord> {
    Ok(PluginRecord {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        digest: r.try_get("digest")?,
        contract_version: r.try_get("contract_version")?,
        size: r.try_get("size")?,
        created_at: r.try_get("created_at")?,
    })
}

pub fn tenant(r: &PgRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: r.try_get("id")?,
        max_concurrency: r.try_get("max_concurrency")?,
        max_active_runs: r.try_get("max_active_runs")?,
        max_items_per_dataset: r.try_get("max_items_per_dataset")?,
    })
}
