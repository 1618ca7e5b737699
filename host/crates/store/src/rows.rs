//! The column lists of every table read, and the decoding of a row into a
//! model, shared by the backends.
//!
//! A backend's row type only says how it reads a column of each kind
//! ([`StoredRow`]); which columns make up a model is written once, here.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::tenancy::{ApiKey, Role, TenantInfo, TenantLimits};

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
/// Columns of `dataset_versions` read by [`dataset_version`].
macro_rules! dataset_version_cols {
    () => {
        "dataset_id, version, change, created_at"
    };
}
/// Columns of `runs` read by [`run`].
macro_rules! run_cols {
    () => {
        "id, tenant_id, dataset_id, dataset_version, target_type, target_id, scorer_ids, status, \
         total_items, succeeded_count, failed_count, skipped_count, config, error, \
         cancel_requested, takeovers, parent_run_id, repeats, started_at, completed_at, created_at, \
         updated_at, lease_claim AS claim_number, exclusive"
    };
}
/// Columns of `results` read by [`result`].
macro_rules! result_cols {
    () => {
        "seq, id, run_id, item_id, item_index, trial, item_version, input, output, expected_output, \
         latency, error, error_kind, started_at, completed_at, retry_count, trace_id, \
         target_metadata, logs, created_at"
    };
}
/// Columns of `scores` read by [`score`].
macro_rules! score_cols {
    () => {
        "item_id, trial, scorer_id, scorer_name, score, reason, error, metadata"
    };
}
/// Columns of `scores` read by [`outline_score`]: the metadata's `usage`
/// object instead of the whole metadata. `->` with a plain key reads the
/// same on both backends (see `results::OUTLINES_AFTER_SEQ` in `sql`).
macro_rules! outline_score_cols {
    () => {
        "item_id, trial, scorer_id, scorer_name, score, reason, error, metadata -> 'usage' AS usage"
    };
}
/// Columns of `plugins` read by [`plugin`].
macro_rules! plugin_cols {
    () => {
        "tenant_id, id, kind, name, description, digest, contract_version, size, created_at"
    };
}
/// Columns of `tenants` read by [`tenant`].
macro_rules! tenant_cols {
    () => {
        "id, max_concurrency, max_active_runs, max_items_per_dataset"
    };
}
/// Columns of `tenants` read by [`tenant_info`] and [`tenant_limits`].
macro_rules! tenant_limit_cols {
    () => {
        "id, max_concurrency, max_active_runs, max_queued_runs, max_datasets, \
         max_items_per_dataset, max_stored_bytes, max_plugins, max_plugin_bytes, weight, \
         max_cache_bytes, created_at"
    };
}
/// Columns of `api_keys` read by [`api_key`].
macro_rules! api_key_cols {
    () => {
        "id, tenant_id, name, role, prefix, created_at, revoked_at"
    };
}
pub(crate) use {
    api_key_cols, dataset_cols, dataset_version_cols, item_cols, item_version_cols,
    outline_score_cols, plugin_cols, result_cols, run_cols, score_cols, tenant_cols,
    tenant_limit_cols,
};

/// How a backend reads one column of each kind from its rows. The kinds
/// that differ between databases are JSON (TEXT vs `jsonb`), time (INTEGER
/// milliseconds vs `timestamptz`) and booleans (INTEGER 0/1 vs `boolean`);
/// the plain ones are the same call on every backend ([`plain_getters`]).
pub(crate) trait StoredRow {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn text_opt(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<i64>;
    /// An integer by position (`SELECT COUNT(*) ...`).
    fn int_at(&self, index: usize) -> StoreResult<i64>;
    fn real(&self, col: &str) -> StoreResult<f64>;
    fn real_opt(&self, col: &str) -> StoreResult<Option<f64>>;
    fn flag(&self, col: &str) -> StoreResult<bool>;
    fn bytes(&self, col: &str) -> StoreResult<Vec<u8>>;
    fn json_opt(&self, col: &str) -> StoreResult<Option<Value>>;
    fn time(&self, col: &str) -> StoreResult<DateTime<Utc>>;
    fn time_opt(&self, col: &str) -> StoreResult<Option<DateTime<Utc>>>;

    /// A JSON column that must not be NULL.
    fn json(&self, col: &str) -> StoreResult<Value> {
        self.json_opt(col)?
            .ok_or_else(|| StoreError::Corrupt(format!("`{col}` is NULL")))
    }
}

/// The [`StoredRow`] getters that are one `try_get` on any sqlx row type.
macro_rules! plain_getters {
    () => {
        fn text(&self, col: &str) -> StoreResult<String> {
            Ok(sqlx::Row::try_get(self, col)?)
        }
        fn text_opt(&self, col: &str) -> StoreResult<Option<String>> {
            Ok(sqlx::Row::try_get(self, col)?)
        }
        fn int(&self, col: &str) -> StoreResult<i64> {
            Ok(sqlx::Row::try_get(self, col)?)
        }
        fn int_at(&self, index: usize) -> StoreResult<i64> {
            Ok(sqlx::Row::try_get(self, index)?)
        }
        fn real(&self, col: &str) -> StoreResult<f64> {
            Ok(sqlx::Row::try_get(self, col)?)
        }
        fn real_opt(&self, col: &str) -> StoreResult<Option<f64>> {
            Ok(sqlx::Row::try_get(self, col)?)
        }
        fn flag(&self, col: &str) -> StoreResult<bool> {
            Ok(sqlx::Row::try_get(self, col)?)
        }
        fn bytes(&self, col: &str) -> StoreResult<Vec<u8>> {
            Ok(sqlx::Row::try_get(self, col)?)
        }
    };
}
pub(crate) use plain_getters;

/// JSON text to a value ([`StoreError::Corrupt`] when it is not JSON).
pub(crate) fn parse_json(text: &str) -> StoreResult<Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn dataset(r: &impl StoredRow) -> StoreResult<Dataset> {
    Ok(Dataset {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?,
        name: r.text("name")?,
        description: r.text_opt("description")?,
        metadata: r.json_opt("metadata")?,
        input_schema: r.json_opt("input_schema")?,
        output_schema: r.json_opt("output_schema")?,
        version: r.int("version")?,
        item_count: r.int("item_count")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub(crate) fn item(r: &impl StoredRow) -> StoreResult<DatasetItem> {
    Ok(DatasetItem {
        id: r.text("item_id")?,
        dataset_id: r.text("dataset_id")?,
        version: r.int("valid_from")?,
        position: r.int("position")?,
        input: r.json("input")?,
        expected_output: r.json_opt("expected_output")?,
        context: r.json_opt("context")?,
        created_at: r.time("item_created_at")?,
        updated_at: r.time("created_at")?,
    })
}

pub(crate) fn item_version(r: &impl StoredRow) -> StoreResult<ItemVersion> {
    Ok(ItemVersion {
        item_id: r.text("item_id")?,
        dataset_id: r.text("dataset_id")?,
        version_number: r.int("version_number")?,
        dataset_version: r.int("valid_from")?,
        snapshot: ItemSnapshot {
            input: r.json("input")?,
            expected_output: r.json_opt("expected_output")?,
            context: r.json_opt("context")?,
        },
        is_deleted: r.flag("is_deleted")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn dataset_version(r: &impl StoredRow) -> StoreResult<DatasetVersion> {
    Ok(DatasetVersion {
        dataset_id: r.text("dataset_id")?,
        version: r.int("version")?,
        created_at: r.time("created_at")?,
        change: r.text("change")?,
    })
}

/// A run status as stored ([`StoreError::Corrupt`] for an unknown name).
pub(crate) fn run_status(name: &str) -> StoreResult<RunStatus> {
    RunStatus::parse(name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown run status `{name}`")))
}

/// A target type as stored ([`StoreError::Corrupt`] for an unknown name).
pub(crate) fn target_type(name: &str) -> StoreResult<TargetType> {
    TargetType::from_stored(name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown target type `{name}`")))
}

/// A plugin kind as stored ([`StoreError::Corrupt`] for an unknown name).
pub(crate) fn plugin_kind(name: &str) -> StoreResult<PluginKind> {
    PluginKind::parse(name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown plugin kind `{name}`")))
}

pub(crate) fn run(r: &impl StoredRow) -> StoreResult<Run> {
    let scorer_ids = serde_json::from_value(r.json("scorer_ids")?)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Run {
        id: r.text("id")?,
        dataset_id: r.text("dataset_id")?,
        dataset_version: r.int("dataset_version")?,
        target_type: target_type(&r.text("target_type")?)?,
        target_id: r.text("target_id")?,
        scorer_ids,
        status: run_status(&r.text("status")?)?,
        total_items: r.int("total_items")?,
        repeats: r.int("repeats")?,
        succeeded_count: r.int("succeeded_count")?,
        failed_count: r.int("failed_count")?,
        skipped_count: r.int("skipped_count")?,
        config: r.json("config")?,
        error: r.text_opt("error")?,
        cancel_requested: r.flag("cancel_requested")?,
        takeovers: r.int("takeovers")?,
        claim_number: r.int("claim_number")?,
        exclusive: r.flag("exclusive")?,
        parent_run_id: r.text_opt("parent_run_id")?,
        started_at: r.time_opt("started_at")?,
        completed_at: r.time_opt("completed_at")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// A result row without its scores, and its sequence number.
pub(crate) fn result(r: &impl StoredRow) -> StoreResult<(i64, RunResult)> {
    Ok((
        r.int("seq")?,
        RunResult {
            id: r.text("id")?,
            run_id: r.text("run_id")?,
            item_id: r.text("item_id")?,
            item_index: r.int("item_index")?,
            trial: r.int("trial")?,
            item_version: r.int("item_version")?,
            input: r.json("input")?,
            output: r.json_opt("output")?,
            expected_output: r.json_opt("expected_output")?,
            latency: r.real("latency")?,
            error: r.text_opt("error")?,
            error_kind: r.text_opt("error_kind")?,
            started_at: r.time("started_at")?,
            completed_at: r.time("completed_at")?,
            retry_count: r.int("retry_count")?,
            trace_id: r.text_opt("trace_id")?,
            target_metadata: r.json_opt("target_metadata")?,
            logs: r.json_opt("logs")?,
            scores: Vec::new(),
            created_at: r.time("created_at")?,
        },
    ))
}

/// What the target produced for one result (see [`TargetRecord`]).
pub(crate) fn target_record(r: &impl StoredRow) -> StoreResult<TargetRecord> {
    Ok(TargetRecord {
        item_id: r.text("item_id")?,
        item_index: r.int("item_index")?,
        trial: r.int("trial")?,
        output: r.json_opt("output")?,
        latency: r.real("latency")?,
        error: r.text_opt("error")?,
        error_kind: r.text_opt("error_kind")?,
        retry_count: r.int("retry_count")?,
        trace_id: r.text_opt("trace_id")?,
        target_metadata: r.json_opt("target_metadata")?,
        logs: r.json_opt("logs")?,
    })
}

/// A result's outline (no scores yet) and its sequence number.
pub(crate) fn outline(r: &impl StoredRow) -> StoreResult<(i64, ResultOutline)> {
    Ok((
        r.int("seq")?,
        ResultOutline {
            item_id: r.text("item_id")?,
            item_index: r.int("item_index")?,
            trial: r.int("trial")?,
            latency: r.real("latency")?,
            error: r.text_opt("error")?,
            error_kind: r.text_opt("error_kind")?,
            usage: r
                .json_opt("usage")?
                .as_ref()
                .and_then(crate::TokenUsage::from_usage),
            scores: Vec::new(),
            score_usage: Vec::new(),
        },
    ))
}

/// A score row and the trial of the item it belongs to.
pub(crate) fn score(r: &impl StoredRow) -> StoreResult<((String, i64), ScoreRow)> {
    Ok((item_trial(r)?, score_row(r, r.json_opt("metadata")?)?))
}

/// A score row of an outline (no metadata), the token usage its metadata
/// reported, and the trial of the item it belongs to.
pub(crate) fn outline_score(
    r: &impl StoredRow,
) -> StoreResult<((String, i64), ScoreRow, Option<crate::TokenUsage>)> {
    Ok((
        item_trial(r)?,
        score_row(r, None)?,
        r.json_opt("usage")?
            .as_ref()
            .and_then(crate::TokenUsage::from_usage),
    ))
}

/// The (item, trial) a score row belongs to.
fn item_trial(r: &impl StoredRow) -> StoreResult<(String, i64)> {
    Ok((r.text("item_id")?, r.int("trial")?))
}

/// A score row's own columns, with `metadata` as read (or left out).
fn score_row(r: &impl StoredRow, metadata: Option<Value>) -> StoreResult<ScoreRow> {
    Ok(ScoreRow {
        scorer_id: r.text("scorer_id")?,
        scorer_name: r.text("scorer_name")?,
        score: r.real_opt("score")?,
        reason: r.text_opt("reason")?,
        error: r.text_opt("error")?,
        metadata,
    })
}

pub(crate) fn plugin(r: &impl StoredRow) -> StoreResult<PluginRecord> {
    Ok(PluginRecord {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?,
        kind: plugin_kind(&r.text("kind")?)?,
        name: r.text("name")?,
        description: r.text("description")?,
        digest: r.text("digest")?,
        contract_version: r.text("contract_version")?,
        size: r.int("size")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn tenant(r: &impl StoredRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: r.text("id")?,
        max_concurrency: r.int("max_concurrency")?,
        max_active_runs: r.int("max_active_runs")?,
        max_items_per_dataset: r.int("max_items_per_dataset")?,
    })
}

pub(crate) fn tenant_limits(r: &impl StoredRow) -> StoreResult<TenantLimits> {
    Ok(TenantLimits {
        items_in_flight: r.int("max_concurrency")?,
        active_runs: r.int("max_active_runs")?,
        queued_runs: r.int("max_queued_runs")?,
        datasets: r.int("max_datasets")?,
        items_per_dataset: r.int("max_items_per_dataset")?,
        stored_bytes: r.int("max_stored_bytes")?,
        plugins: r.int("max_plugins")?,
        plugin_bytes: r.int("max_plugin_bytes")?,
        weight: r.int("weight")?,
        cache_bytes: r.int("max_cache_bytes")?,
    })
}

pub(crate) fn tenant_info(r: &impl StoredRow) -> StoreResult<TenantInfo> {
    Ok(TenantInfo {
        id: r.text("id")?,
        limits: tenant_limits(r)?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn api_key(r: &impl StoredRow) -> StoreResult<ApiKey> {
    let role = r.text("role")?;
    Ok(ApiKey {
        id: r.text("id")?,
        tenant_id: r.text("tenant_id")?,
        name: r.text_opt("name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role `{role}`")))?,
        prefix: r.text("prefix")?,
        created_at: r.time("created_at")?,
        revoked_at: r.time_opt("revoked_at")?,
    })
}
