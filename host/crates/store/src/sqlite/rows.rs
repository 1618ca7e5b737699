//! Decoding SQLite rows into models, and the column lists that go with them.

use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rules::from_ms;

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

/// JSON text to a value.
pub fn json(text: Option<String>) -> StoreResult<Option<Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(e.to_string())))
        .transpose()
}

/// Required JSON text to a value.
pub fn json_req(text: String) -> StoreResult<Value> {
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A value as JSON text.
pub fn to_json(v: &Value) -> String {
    v.to_string()
}

/// An optional value as JSON text.
pub fn to_json_opt(v: Option<&Value>) -> Option<String> {
    v.map(Value::to_string)
}

pub fn dataset(r: &SqliteRow) -> StoreResult<Dataset> {
    Ok(Dataset {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        metadata: json(r.try_get("metadata")?)?,
        input_schema: json(r.try_get("input_schema")?)?,
        output_schema: json(r.try_get("output_schema")?)?,
        version: r.try_get("version")?,
        item_count: r.try_get("item_count")?,
        created_at: from_ms(r.try_get("created_at")?),
        updated_at: from_ms(r.try_get("updated_at")?),
    })
}

pub fn item(r: &SqliteRow) -> StoreResult<DatasetItem> {
    Ok(DatasetItem {
        id: r.try_get("item_id")?,
        dataset_id: r.try_get("dataset_id")?,
        version: r.try_get("valid_from")?,
        position: r.try_get("position")?,
        input: json_req(r.try_get("input")?)?,
        expected_output: json(r.try_get("expected_output")?)?,
        context: json(r.try_get("context")?)?,
        created_at: from_ms(r.try_get("item_created_at")?),
        updated_at: from_ms(r.try_get("created_at")?),
    })
}

pub fn item_version(r: &SqliteRow) -> StoreResult<ItemVersion> {
    Ok(ItemVersion {
        item_id: r.try_get("item_id")?,
        dataset_id: r.try_get("dataset_id")?,
        version_number: r.try_get("version_number")?,
        dataset_version: r.try_get("valid_from")?,
        snapshot: ItemSnapshot {
            input: json_req(r.try_get("input")?)?,
            expected_output: json(r.try_get("expected_output")?)?,
            context: json(r.try_get("context")?)?,
        },
        is_deleted: r.try_get::<i64, _>("is_deleted")? != 0,
        created_at: from_ms(r.try_get("created_at")?),
    })
}

pub fn dataset_version(r: &SqliteRow) -> StoreResult<DatasetVersion> {
    Ok(DatasetVersion {
        dataset_id: r.try_get("dataset_id")?,
        version: r.try_get("version")?,
        created_at: from_ms(r.try_get("created_at")?),
        change: r.try_get("change")?,
    })
}

pub fn run(r: &SqliteRow) -> StoreResult<Run> {
    let status: String = r.try_get("status")?;
    let scorer_ids: String = r.try_get("scorer_ids")?;
    Ok(Run {
        id: r.try_get("id")?,
        dataset_id: r.try_get("dataset_id")?,
        dataset_version: r.try_get("dataset_version")?,
        target_type: r.try_get("target_type")?,
        target_id: r.try_get("target_id")?,
        scorer_ids: serde_json::from_str(&scorer_ids)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown run status `{status}`")))?,
        total_items: r.try_get("total_items")?,
        succeeded_count: r.try_get("succeeded_count")?,
        failed_count: r.try_get("failed_count")?,
        skipped_count: r.try_get("skipped_count")?,
        config: json_req(r.try_get("config")?)?,
        error: r.try_get("error")?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
        started_at: r.try_get::<Option<i64>, _>("started_at")?.map(from_ms),
        completed_at: r.try_get::<Option<i64>, _>("completed_at")?.map(from_ms),
        created_at: from_ms(r.try_get("created_at")?),
        updated_at: from_ms(r.try_get("updated_at")?),
    })
}

/// A result row without its scores, and its sequence number.
pub fn result(r: &SqliteRow) -> StoreResult<(i64, RunResult)> {
    Ok((
        r.try_get("seq")?,
        RunResult {
            id: r.try_get("id")?,
            run_id: r.try_get("run_id")?,
            item_id: r.try_get("item_id")?,
            item_index: r.try_get("item_index")?,
            item_version: r.try_get("item_version")?,
            input: json_req(r.try_get("input")?)?,
            output: json(r.try_get("output")?)?,
            expected_output: json(r.try_get("expected_output")?)?,
            latency: r.try_get("latency")?,
            error: r.try_get("error")?,
            error_kind: r.try_get("error_kind")?,
            started_at: from_ms(r.try_get("started_at")?),
            completed_at: from_ms(r.try_get("completed_at")?),
            retry_count: r.try_get("retry_count")?,
            trace_id: r.try_get("trace_id")?,
            logs: json(r.try_get("logs")?)?,
            scores: Vec::new(),
            created_at: from_ms(r.try_get("created_at")?),
        },
    ))
}

/// A score row and the item it belongs to.
pub fn score(r: &SqliteRow) -> StoreResult<(String, ScoreRow)> {
    Ok((
        r.try_get("item_id")?,
        ScoreRow {
            scorer_id: r.try_get("scorer_id")?,
            scorer_name: r.try_get("scorer_name")?,
            score: r.try_get("score")?,
            reason: r.try_get("reason")?,
            error: r.try_get("error")?,
            metadata: json(r.try_get("metadata")?)?,
        },
    ))
}

pub fn plugin(r: &SqliteRow) -> StoreResult<PluginRecord> {
    Ok(PluginRecord {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        digest: r.try_get("digest")?,
        contract_version: r.try_get("contract_version")?,
        size: r.try_get("size")?,
        created_at: from_ms(r.try_get("created_at")?),
    })
}

pub fn tenant(r: &SqliteRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: r.try_get("id")?,
        max_concurrency: r.try_get("max_concurrency")?,
        max_active_runs: r.try_get("max_active_runs")?,
        max_items_per_dataset: r.try_get("max_items_per_dataset")?,
    })
}
