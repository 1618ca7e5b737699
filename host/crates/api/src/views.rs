//! JSON views of store records that carry Mastra's field names next to
//! assay's, so one answer satisfies both an assay client and Mastra's
//! published response schemas (`@mastra/server`'s dataset, item, experiment
//! and score schemas). Mastra ignores fields it does not know; assay's own
//! fields keep their names and meaning.
//!
//! Where the two disagree on a value rather than a name, the Mastra-only
//! routes (experiments, scores) use Mastra's value and keep assay's under
//! another name: `status` `cancelled` is `failed` there (Mastra has no
//! cancelled experiment) with the exact status in `runStatus`, and target
//! type `plugin` is `agent`.

use assay_store::{
    Dataset, DatasetItem, DatasetVersion, ItemVersion, Run, RunResult, RunStatus, TargetType,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

fn object<T: Serialize>(v: &T) -> Result<Map<String, Value>, ApiError> {
    match serde_json::to_value(v).map_err(ApiError::internal)? {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::internal(format!(
            "expected a JSON object, got {other}"
        ))),
    }
}

/// A dataset: `groundTruthSchema` mirrors `outputSchema`; a schema that is
/// not set is left out (Mastra's schema allows absent, not `null`).
pub fn dataset(d: &Dataset) -> Result<Value, ApiError> {
    let mut m = object(d)?;
    if let Some(s) = &d.output_schema {
        m.insert("groundTruthSchema".into(), s.clone());
    }
    for key in ["inputSchema", "outputSchema"] {
        if m.get(key).is_some_and(Value::is_null) {
            m.remove(key);
        }
    }
    Ok(Value::Object(m))
}

/// An item: `datasetVersion` mirrors `version` (the dataset version of
/// the item's last change), `groundTruth` mirrors `expectedOutput`.
pub fn item(i: &DatasetItem) -> Result<Value, ApiError> {
    let mut m = object(i)?;
    m.insert("datasetVersion".into(), json!(i.version));
    m.insert(
        "groundTruth".into(),
        i.expected_output.clone().unwrap_or(Value::Null),
    );
    Ok(Value::Object(m))
}

/// A dataset version, with the `id` Mastra requires (`<datasetId>@<version>`:
/// assay keys versions by dataset and number).
pub fn dataset_version(v: &DatasetVersion) -> Result<Value, ApiError> {
    let mut m = object(v)?;
    m.insert(
        "id".into(),
        json!(format!("{}@{}", v.dataset_id, v.version)),
    );
    Ok(Value::Object(m))
}

/// One entry of an item's history as Mastra's `itemVersionResponseSchema`
/// (plus assay's [`ItemVersion`] fields): the content at that version,
/// `validTo` = the dataset version that replaced it (`null`: still current
/// or a tombstone), `createdAt` = when the item was first added.
pub fn history_entry(
    v: &ItemVersion,
    valid_to: Option<i64>,
    first_created: &chrono::DateTime<chrono::Utc>,
) -> Result<Value, ApiError> {
    let mut m = object(v)?;
    m.insert("id".into(), json!(v.item_id));
    m.insert("input".into(), v.snapshot.input.clone());
    let expected = v.snapshot.expected_output.clone().unwrap_or(Value::Null);
    m.insert("expectedOutput".into(), expected.clone());
    m.insert("groundTruth".into(), expected);
    m.insert(
        "context".into(),
        v.snapshot.context.clone().unwrap_or(Value::Null),
    );
    m.insert("validTo".into(), json!(valid_to));
    m.insert("createdAt".into(), json!(first_created));
    m.insert("updatedAt".into(), json!(v.created_at));
    Ok(Value::Object(m))
}

/// Mastra's status of a run: it has no `cancelled`.
fn experiment_status(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Cancelled => "failed",
        other => other.as_str(),
    }
}

/// Mastra's target type of a run: a target plugin is an `agent`.
fn experiment_target_type(t: TargetType) -> &'static str {
    match t {
        TargetType::Plugin => "agent",
        TargetType::Scorer => "scorer",
    }
}

/// A run as a Mastra experiment (`experimentResponseSchema`), with every
/// field of assay's run too; `runStatus` is the exact status.
pub fn experiment(r: &Run) -> Result<Value, ApiError> {
    let mut m = object(r)?;
    m.insert("status".into(), json!(experiment_status(r.status)));
    m.insert("runStatus".into(), json!(r.status));
    m.insert(
        "targetType".into(),
        json!(experiment_target_type(r.target_type)),
    );
    Ok(Value::Object(m))
}

/// The answer to a trigger, for both routes: assay's `runId` and Mastra's
/// `experimentId` name the same run.
pub fn triggered(r: &Run) -> Value {
    json!({
        "runId": r.id,
        "experimentId": r.id,
        "datasetId": r.dataset_id,
        "datasetVersion": r.dataset_version,
        "status": r.status,
        "totalItems": r.total_items,
        "succeededCount": 0,
        "failedCount": 0,
        "skippedCount": 0,
        "startedAt": null,
        "completedAt": null,
        "createdAt": r.created_at,
        "results": [],
    })
}

/// A result as a Mastra experiment result (`experimentResultResponseSchema`):
/// `experimentId`, `itemDatasetVersion`, `groundTruth`, and `error` as
/// `{message, code?}` (assay's error kind is the code); assay's other fields
/// (`scores`, `latency`, `logs`, ...) stay.
pub fn experiment_result(r: &RunResult) -> Result<Value, ApiError> {
    let mut m = object(r)?;
    m.insert("experimentId".into(), json!(r.run_id));
    m.insert("itemDatasetVersion".into(), json!(r.item_version));
    m.insert(
        "groundTruth".into(),
        r.expected_output.clone().unwrap_or(Value::Null),
    );
    let error = r.error.as_ref().map(|message| {
        let mut e = json!({ "message": message });
        if let Some(kind) = &r.error_kind {
            e["code"] = json!(kind);
        }
        e
    });
    m.insert("error".into(), json!(error));
    Ok(Value::Object(m))
}

/// The scores of one result as Mastra score rows (`ScoreRowData`): one per
/// scorer that produced a score. A scorer that failed has no score, and
/// Mastra's row requires one, so it is not listed here (its error is in the
/// result's `scores`).
pub fn score_rows(run: &Run, r: &RunResult) -> Vec<Value> {
    r.scores
        .iter()
        .filter_map(|s| {
            let score = s.score?;
            let mut row = json!({
                "id": format!("{}:{}", r.id, s.scorer_id),
                "scorerId": s.scorer_id,
                "entityId": r.item_id,
                "runId": r.run_id,
                "input": r.input,
                "output": r.output,
                "score": score,
                "scorer": {"id": s.scorer_id, "name": s.scorer_name},
                "source": "TEST",
                "entity": {"id": run.target_id, "name": run.target_id},
                "datasetId": run.dataset_id,
                "datasetItemId": r.item_id,
                "createdAt": r.created_at,
                "updatedAt": null,
            });
            if run.target_type == TargetType::Plugin {
                row["entityType"] = json!("AGENT");
            }
            if let Some(reason) = &s.reason {
                row["reason"] = json!(reason);
            }
            if let Some(meta @ Value::Object(_)) = &s.metadata {
                row["metadata"] = meta.clone();
            }
            if let Some(trace) = &r.trace_id {
                row["traceId"] = json!(trace);
            }
            Some(row)
        })
        .collect()
}
