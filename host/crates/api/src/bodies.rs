//! The JSON request bodies, parsed strictly.
//!
//! Every body type denies unknown fields: a field assay does not know (a
//! typo, or a Mastra field assay cannot store such as `externalId` or
//! `requestContext`) is a 400 `invalid_body` naming it, never dropped. Where
//! Mastra's datasets API names a field differently, both names are accepted
//! (serde aliases; sending both at once is a 400 `duplicate field`):
//!
//! | assay            | Mastra              |
//! |------------------|---------------------|
//! | `expectedOutput` | `groundTruth`       |
//! | `outputSchema`   | `groundTruthSchema` |
//! | `version`        | `datasetVersion`    |
//! | `runIdA`/`runIdB`| `experimentIdA`/`experimentIdB` |
//!
//! The store's own types stay free of HTTP concerns; these convert into them.

use std::collections::{BTreeMap, HashMap};

use assay_runner::compare::{Direction, Threshold};
use assay_store::{DatasetPatch, ItemPatch, NewDataset, NewItem};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `POST /api/datasets`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDataset {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default)]
    input_schema: Option<Value>,
    #[serde(default, alias = "groundTruthSchema")]
    output_schema: Option<Value>,
}

impl From<CreateDataset> for NewDataset {
    fn from(b: CreateDataset) -> Self {
        NewDataset {
            name: b.name,
            description: b.description,
            metadata: b.metadata,
            input_schema: b.input_schema,
            output_schema: b.output_schema,
        }
    }
}

/// `PATCH /api/datasets/{datasetId}`: absent leaves a field, `null` clears it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateDataset {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    metadata: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    input_schema: Option<Option<Value>>,
    #[serde(default, alias = "groundTruthSchema", deserialize_with = "present")]
    output_schema: Option<Option<Value>>,
}

impl From<UpdateDataset> for DatasetPatch {
    fn from(b: UpdateDataset) -> Self {
        DatasetPatch {
            name: b.name,
            description: b.description,
            metadata: b.metadata,
            input_schema: b.input_schema,
            output_schema: b.output_schema,
        }
    }
}

/// One new item (`POST .../items`, and each entry of the bulk/batch add).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddItem {
    input: Value,
    #[serde(default, alias = "groundTruth")]
    expected_output: Option<Value>,
    #[serde(default)]
    context: Option<Value>,
}

impl From<AddItem> for NewItem {
    fn from(b: AddItem) -> Self {
        NewItem {
            input: b.input,
            expected_output: b.expected_output,
            context: b.context,
        }
    }
}

/// `PATCH .../items/{itemId}`: absent leaves a field, `null` clears it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateItem {
    #[serde(default)]
    input: Option<Value>,
    #[serde(default, alias = "groundTruth", deserialize_with = "present")]
    expected_output: Option<Option<Value>>,
    #[serde(default, deserialize_with = "present")]
    context: Option<Option<Value>>,
}

impl UpdateItem {
    /// Whether the patch names no field at all (it changes nothing, so it
    /// must not record a new dataset version).
    pub fn is_empty(&self) -> bool {
        self.input.is_none() && self.expected_output.is_none() && self.context.is_none()
    }
}

impl From<UpdateItem> for ItemPatch {
    fn from(b: UpdateItem) -> Self {
        ItemPatch {
            input: b.input,
            expected_output: b.expected_output,
            context: b.context,
        }
    }
}

/// `POST .../items/bulk` and `POST .../items/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddItems {
    /// Added in this order with one version bump.
    pub items: Vec<AddItem>,
}

/// `DELETE .../items/bulk` and `DELETE .../items/batch`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteItems {
    /// Ids of the items to delete (unknown ids are ignored).
    pub item_ids: Vec<String>,
}

/// `POST .../runs` and `POST .../experiments`: Mastra's trigger fields plus
/// assay's run options.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerRun {
    /// `plugin` (aliases `agent`, `workflow`, `target`) or `scorer`.
    pub target_type: String,
    /// Id of the target (or scorer) plugin.
    pub target_id: String,
    /// Scorer plugin ids.
    #[serde(default)]
    pub scorer_ids: Option<Vec<String>>,
    /// Dataset version to pin (default: the latest).
    #[serde(default, alias = "datasetVersion")]
    pub version: Option<i64>,
    /// Mastra's create-only switch: assay always starts the run, so only
    /// `true` (or absent) is accepted.
    #[serde(default)]
    pub start: Option<bool>,
    /// Items of this run in flight at once (default 5).
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// Retries of transient target failures (default 0).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Base backoff in ms (default 1000).
    #[serde(default)]
    pub retry_delay: Option<u64>,
    /// Deadline of one item in ms, all attempts included.
    #[serde(default)]
    pub item_timeout: Option<u64>,
    /// Per-call deadline of the target in ms.
    #[serde(default)]
    pub target_timeout: Option<u64>,
    /// Per-call deadline of each scorer in ms.
    #[serde(default)]
    pub scorer_timeout: Option<u64>,
    /// Linear memory cap of one plugin instance, bytes.
    #[serde(default)]
    pub max_memory_bytes: Option<usize>,
    /// Trials per item (default 1, at most 100): each item is executed
    /// this many times.
    #[serde(default)]
    pub repeat: Option<u32>,
    /// JSON config handed to the target.
    #[serde(default)]
    pub target_config: Option<Value>,
    /// JSON config handed to each scorer, by scorer id.
    #[serde(default)]
    pub scorer_configs: Option<BTreeMap<String, Value>>,
    /// Per plugin id: a narrowing of the plugin's stored network grant for
    /// this run (checked at trigger time; wider than the grant is a 400).
    #[serde(default)]
    pub network: Option<BTreeMap<String, assay_plugin_host::NetworkGrant>>,
    /// Reuse stored outputs of the same target, config and item, and store
    /// the new ones (default false; see docs/caching.md).
    #[serde(default)]
    pub cache: Option<bool>,
}

/// `POST .../runs/{runId}/rescore`: the scorers that grade the run's
/// stored outputs again (the target is not called).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RescoreRun {
    /// Scorer plugin ids (at least one).
    pub scorer_ids: Vec<String>,
    /// JSON config handed to each scorer, by scorer id (a scorer the parent
    /// also had keeps the parent's config when absent here).
    #[serde(default)]
    pub scorer_configs: Option<BTreeMap<String, Value>>,
    /// Items graded at once (default: the parent run's).
    #[serde(default)]
    pub max_concurrency: Option<usize>,
}

/// `POST .../compare`: `runIdA`/`runIdB` or Mastra's
/// `experimentIdA`/`experimentIdB`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompareRuns {
    /// Baseline run.
    #[serde(alias = "experimentIdA")]
    pub run_id_a: String,
    /// Candidate run.
    #[serde(alias = "experimentIdB")]
    pub run_id_b: String,
    /// Per scorer id.
    #[serde(default)]
    pub thresholds: Option<HashMap<String, ThresholdBody>>,
    /// Score at or above which an item passes (default 0.5).
    #[serde(default)]
    pub pass_threshold: Option<f64>,
    /// List the items after this item index (the `nextAfterIndex` of the
    /// previous answer).
    #[serde(default)]
    pub after_index: Option<i64>,
    /// Most items listed (default 1000, at most 10000).
    #[serde(default)]
    pub limit: Option<usize>,
    /// List only the items that regressed.
    #[serde(default)]
    pub regressed_only: Option<bool>,
}

/// One scorer's regression threshold: `{value?, direction?}`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThresholdBody {
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    direction: Option<Direction>,
}

impl From<ThresholdBody> for Threshold {
    fn from(b: ThresholdBody) -> Self {
        let d = Threshold::default();
        Threshold {
            value: b.value.unwrap_or(d.value),
            direction: b.direction.unwrap_or(d.direction),
        }
    }
}

/// A present field (even `null`) is `Some(..)`; with `#[serde(default)]` an
/// absent one is `None`.
fn present<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::parse_json;

    #[test]
    fn an_unknown_field_is_named() {
        let e = parse_json::<AddItem>(br#"{"input":1,"expectedOutputs":2}"#).unwrap_err();
        assert_eq!(e.code, "invalid_body");
        assert!(e.message.contains("expectedOutputs"), "{}", e.message);
        let e = parse_json::<AddItems>(br#"{"items":[{"input":1},{"input":2,"metadata":{}}]}"#)
            .unwrap_err();
        assert!(e.message.contains("metadata"), "{}", e.message);
        assert_eq!(e.field.as_deref(), Some("items[1].metadata"));
    }

    #[test]
    fn mastra_names_are_aliases() {
        let item: NewItem = parse_json::<AddItem>(br#"{"input":1,"groundTruth":2}"#)
            .unwrap()
            .into();
        assert_eq!(item.expected_output, Some(serde_json::json!(2)));
        let patch: ItemPatch = parse_json::<UpdateItem>(br#"{"groundTruth":null}"#)
            .unwrap()
            .into();
        assert_eq!(patch.expected_output, Some(None));
        let t = parse_json::<TriggerRun>(
            br#"{"targetType":"agent","targetId":"echo","datasetVersion":3}"#,
        )
        .unwrap();
        assert_eq!(t.version, Some(3));
        let c = parse_json::<CompareRuns>(br#"{"experimentIdA":"a","experimentIdB":"b"}"#).unwrap();
        assert_eq!((c.run_id_a.as_str(), c.run_id_b.as_str()), ("a", "b"));
        let d: NewDataset = parse_json::<CreateDataset>(br#"{"name":"n","groundTruthSchema":{}}"#)
            .unwrap()
            .into();
        assert_eq!(d.output_schema, Some(serde_json::json!({})));
    }

    #[test]
    fn both_names_at_once_are_refused() {
        let e = parse_json::<AddItem>(br#"{"input":1,"groundTruth":2,"expectedOutput":3}"#)
            .unwrap_err();
        assert_eq!(e.code, "invalid_body");
        assert!(e.message.contains("duplicate"), "{}", e.message);
        let e = parse_json::<TriggerRun>(
            br#"{"targetType":"plugin","targetId":"x","version":1,"datasetVersion":2}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("duplicate"), "{}", e.message);
    }

    #[test]
    fn an_empty_item_patch_is_recognised() {
        assert!(parse_json::<UpdateItem>(b"{}").unwrap().is_empty());
        assert!(
            !parse_json::<UpdateItem>(br#"{"context":null}"#)
                .unwrap()
                .is_empty()
        );
    }
}
