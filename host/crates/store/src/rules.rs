//! Backend-neutral rules: ids, clocks, version and status checks.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{StoreError, StoreResult};
use crate::models::{Dataset, NewResult, RunStatus, ScoreRow};

/// How many rows one multi-row `INSERT` carries (SQLite allows 32,766 bound
/// parameters per statement, PostgreSQL 65,535).
pub const INSERT_CHUNK: usize = 500;

/// Names of the changes recorded in `dataset_versions`.
pub mod change {
    pub const CREATE: &str = "dataset.create";
    pub const SCHEMA: &str = "dataset.schema";
    pub const ITEMS_ADD: &str = "items.add";
    pub const ITEMS_UPDATE: &str = "items.update";
    pub const ITEMS_DELETE: &str = "items.delete";
}

/// A new id: UUID v7 text (time ordered).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Now, at millisecond precision (what both backends store exactly).
pub fn now() -> DateTime<Utc> {
    trunc_ms(Utc::now())
}

/// `t` truncated to whole milliseconds.
pub fn trunc_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Milliseconds since the epoch (SQLite's timestamp columns).
pub fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`to_ms`].
pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A lease length in milliseconds (at least 1).
pub fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// A score or latency as stored: NaN and infinities have no JSON form.
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Scores in the form they are stored (non-finite values become `None`).
pub fn normalized_score(s: &ScoreRow) -> Option<f64> {
    s.score.and_then(finite)
}

/// `Ok` when `version` exists for `dataset` (0 ..= current).
pub fn check_version(dataset: &Dataset, version: i64) -> StoreResult<()> {
    if (0..=dataset.version).contains(&version) {
        Ok(())
    } else {
        Err(StoreError::not_found(
            "Dataset version",
            format!("{}@{version}", dataset.id),
        ))
    }
}

/// `Ok` when `status` may end a run.
pub fn check_terminal(status: RunStatus) -> StoreResult<()> {
    if status.is_terminal() {
        Ok(())
    } else {
        Err(StoreError::validation(
            "status",
            format!("a run cannot finish as `{status}`"),
        ))
    }
}

/// The conflict a finished run answers with.
pub fn run_finished(id: &str, status: RunStatus) -> StoreError {
    StoreError::Conflict(format!("run {id} is already {status}"))
}

/// Rejects a batch that names the same trial of an item twice (the second
/// would be a silent duplicate of the first) or a negative trial.
pub fn check_batch(batch: &[NewResult]) -> StoreResult<()> {
    let mut seen = std::collections::HashSet::with_capacity(batch.len());
    for (i, r) in batch.iter().enumerate() {
        if r.trial < 0 {
            return Err(StoreError::validation(
                format!("results[{i}].trial"),
                format!("trial {} of item {} is negative", r.trial, r.item_id),
            ));
        }
        if !seen.insert((r.item_id.as_str(), r.trial)) {
            return Err(StoreError::validation(
                format!("results[{i}].itemId"),
                format!(
                    "trial {} of item {} appears twice in one batch",
                    r.trial, r.item_id
                ),
            ));
        }
    }
    Ok(())
}

/// Rejects a batch with a trial the run does not have (`repeats` trials
/// per item, numbered from 0): nothing of the batch is written.
pub fn check_trials(batch: &[NewResult], repeats: i64) -> StoreResult<()> {
    match batch.iter().position(|r| r.trial >= repeats) {
        Some(i) => Err(StoreError::validation(
            format!("results[{i}].trial"),
            format!(
                "trial {} of item {} is out of range: the run has {repeats} trials per item",
                batch[i].trial, batch[i].item_id
            ),
        )),
        None => Ok(()),
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `Ok` when `name` can name a dataset.
pub fn check_name(name: &str) -> StoreResult<()> {
    if name.trim().is_empty() {
        return Err(StoreError::validation("name", "must not be empty"));
    }
    Ok(())
}

/// Applies `patch` to `ds` (in memory). Returns the schema field that
/// changed (`inputSchema`, or `outputSchema` when only it changed), if any;
/// a new schema is checked to be a valid JSON Schema.
pub fn apply_dataset_patch(
    ds: &mut Dataset,
    patch: crate::models::DatasetPatch,
) -> StoreResult<Option<&'static str>> {
    if let Some(name) = patch.name {
        check_name(&name)?;
        ds.name = name;
    }
    if let Some(d) = patch.description {
        ds.description = d;
    }
    if let Some(m) = patch.metadata {
        ds.metadata = m;
    }
    let mut changed = None;
    if let Some(out) = patch.output_schema
        && out != ds.output_schema
    {
        ds.output_schema = out;
        changed = Some("outputSchema");
    }
    if let Some(inp) = patch.input_schema
        && inp != ds.input_schema
    {
        ds.input_schema = inp;
        changed = Some("inputSchema");
    }
    if changed.is_some() {
        crate::validate::ItemValidator::new(ds.input_schema.as_ref(), ds.output_schema.as_ref())?;
    }
    Ok(changed)
}

/// Applies `patch` to an item's content, returning the new content.
pub fn apply_item_patch(
    item: &crate::models::DatasetItem,
    patch: crate::models::ItemPatch,
) -> crate::models::ItemSnapshot {
    crate::models::ItemSnapshot {
        input: patch.input.unwrap_or_else(|| item.input.clone()),
        expected_output: patch
            .expected_output
            .unwrap_or_else(|| item.expected_output.clone()),
        context: patch.context.unwrap_or_else(|| item.context.clone()),
    }
}

/// `LimitExceeded` when `add` more items would take a dataset holding
/// `current` past `max`.
pub fn check_item_limit(current: i64, add: usize, max: i64) -> StoreResult<()> {
    if current.saturating_add(add as i64) > max {
        return Err(StoreError::LimitExceeded {
            key: "items-per-dataset",
            what: format!("the dataset holds {current} items, adding {add}"),
            limit: max,
        });
    }
    Ok(())
}

/// Which runs a claim may take (see `docs/fair-share.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimScope {
    /// Any claimable run: an interrupted one first, then the fair order.
    AnyTenant,
    /// Only a pending run of a tenant with no run `running` anywhere.
    IdleTenants,
}
