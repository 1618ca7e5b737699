//! The records the store reads and writes.
//!
//! Field names (camelCase in JSON) follow Mastra's datasets "runs" API, so the
//! HTTP layer can return these types as they are. Ids are UUID v7 text,
//! timestamps are UTC with millisecond precision (both backends store the same
//! value), JSON payloads are [`serde_json::Value`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The tenant every install starts with (seeded by the first migration).
pub const DEFAULT_TENANT: &str = "default";

/// A tenant and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// Tenant id (`default` until API keys arrive).
    pub id: String,
    /// Items of this tenant in flight at once (all runs, all hosts).
    pub max_concurrency: i64,
    /// Runs of this tenant in `running` at once; `claim_next_run` leaves
    /// further pending runs queued.
    pub max_active_runs: i64,
    /// Live items one dataset may hold; `add_items` beyond it fails with
    /// [`crate::StoreError::LimitExceeded`].
    pub max_items_per_dataset: i64,
}

impl Tenant {
    /// A tenant with the default limits.
    pub fn with_defaults(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            max_concurrency: 256,
            max_active_runs: 16,
            max_items_per_dataset: 10_000_000,
        }
    }
}

/// A dataset: a named, versioned collection of items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    pub id: String,
    #[serde(skip)]
    pub tenant_id: String,
    pub name: String,
    pub description: Option<String>,
    pub metadata: Option<Value>,
    /// JSON Schema every item `input` must satisfy.
    pub input_schema: Option<Value>,
    /// JSON Schema every item `expectedOutput` must satisfy (when present).
    pub output_schema: Option<Value>,
    /// 0 on create, +1 per mutation of the items or of a schema.
    pub version: i64,
    /// Live items (at `version`).
    pub item_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Fields of a new dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewDataset {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub input_schema: Option<Value>,
    #[serde(default)]
    pub output_schema: Option<Value>,
}

/// A partial update of a dataset. An outer `None` leaves a field as it is;
/// `Some(None)` (JSON `null`) clears it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub metadata: Option<Option<Value>>,
    #[serde(default, deserialize_with = "double_option")]
    pub input_schema: Option<Option<Value>>,
    #[serde(default, deserialize_with = "double_option")]
    pub output_schema: Option<Option<Value>>,
}

/// An item as it is now (or as it was at a given dataset version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetItem {
    pub id: String,
    pub dataset_id: String,
    /// Dataset version at the item's last change.
    pub version: i64,
    /// Stable insertion order inside the dataset (the dataset index order).
    pub position: i64,
    pub input: Value,
    pub expected_output: Option<Value>,
    pub context: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Fields of a new item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewItem {
    pub input: Value,
    #[serde(default)]
    pub expected_output: Option<Value>,
    #[serde(default)]
    pub context: Option<Value>,
}

/// One message of a streamed item import (see
/// `ItemStore::add_items_streamed`).
#[derive(Debug, Clone, PartialEq)]
pub enum ItemFeed {
    /// More items, in order.
    Batch(Vec<NewItem>),
    /// The end: commit what was sent. A feed that closes without it is
    /// rolled back.
    Done,
}

/// What a streamed item import added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamedItems {
    /// Items added.
    pub added: u64,
    /// The dataset version holding them (unchanged when none was added).
    pub version: i64,
}

/// A partial update of an item (`Some(None)` clears an optional field).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemPatch {
    #[serde(default)]
    pub input: Option<Value>,
    #[serde(default, deserialize_with = "double_option")]
    pub expected_output: Option<Option<Value>>,
    #[serde(default, deserialize_with = "double_option")]
    pub context: Option<Option<Value>>,
}

/// The content of an item at one of its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemSnapshot {
    pub input: Value,
    pub expected_output: Option<Value>,
    pub context: Option<Value>,
}

/// One version of one item (history; tombstones included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemVersion {
    pub item_id: String,
    pub dataset_id: String,
    /// Counts per item from 1.
    pub version_number: i64,
    /// The dataset version this item version appeared in.
    pub dataset_version: i64,
    pub snapshot: ItemSnapshot,
    /// A tombstone: the item was deleted at `dataset_version`.
    pub is_deleted: bool,
    pub created_at: DateTime<Utc>,
}

/// One entry of a dataset's version history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetVersion {
    pub dataset_id: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    /// What made this version: `dataset.create`, `items.add`, `items.update`,
    /// `items.delete`, `dataset.schema`.
    pub change: String,
}

/// Which items a list shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemQuery {
    /// A past dataset version (`None`: the live items).
    pub version: Option<i64>,
    /// Case-insensitive substring over the JSON text of `input` and
    /// `expectedOutput`.
    pub search: Option<String>,
    pub page: Page,
}

/// Status of a run. Lowercase in JSON and in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    /// The lowercase name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => RunStatus::Pending,
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }

    /// Completed, failed or cancelled: nothing changes a finished run.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a run's target is. Lowercase in JSON and in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// A target plugin (Mastra's `agent` and `workflow` are accepted as
    /// aliases by [`TargetType::parse`]).
    Plugin,
    /// A scorer plugin run as the target, to calibrate it on items shaped
    /// `{input, output, groundTruth}`.
    Scorer,
}

impl TargetType {
    /// The name stored in the database and used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Plugin => "plugin",
            TargetType::Scorer => "scorer",
        }
    }

    /// Parses a name as a client may write it: `plugin`, `target`, `agent`,
    /// `workflow` (all: a target plugin) or `scorer`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "plugin" | "target" | "agent" | "workflow" => Some(TargetType::Plugin),
            "scorer" => Some(TargetType::Scorer),
            _ => None,
        }
    }

    /// Parses the stored name only (`plugin` or `scorer`).
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "plugin" => Some(TargetType::Plugin),
            "scorer" => Some(TargetType::Scorer),
            _ => None,
        }
    }
}

impl std::fmt::Display for TargetType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a registered plugin is. Lowercase in JSON and in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Grades outputs.
    Scorer,
    /// Turns items into outputs.
    Target,
}

impl PluginKind {
    /// The name stored in the database and used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Scorer => "scorer",
            PluginKind::Target => "target",
        }
    }

    /// Parses `scorer` or `target`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scorer" => Some(PluginKind::Scorer),
            "target" => Some(PluginKind::Target),
            _ => None,
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run: every item of one pinned dataset version through a target and
/// scorers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: String,
    pub dataset_id: String,
    pub dataset_version: i64,
    pub target_type: TargetType,
    pub target_id: String,
    pub scorer_ids: Vec<String>,
    pub status: RunStatus,
    /// Trials to execute: items of the pinned version times `repeats`.
    pub total_items: i64,
    /// How many times each item is executed (1: no repeats). Counters
    /// (`totalItems`, `succeededCount`, ...) count trials.
    #[serde(default = "one")]
    pub repeats: i64,
    pub succeeded_count: i64,
    pub failed_count: i64,
    /// `total - succeeded - failed` once finished (0 before).
    pub skipped_count: i64,
    /// The run's options as the runner gave them.
    pub config: Value,
    /// Why a run failed as a whole (setup or fatal error).
    pub error: Option<String>,
    pub cancel_requested: bool,
    /// Times another process took the run over after its lease expired
    /// with its owner gone (not counting a release on graceful shutdown).
    #[serde(default)]
    pub takeovers: i64,
    /// The number of the claim holding the run's lease when this row was
    /// read (every claim of the run, a helper's included, takes the next
    /// number). Internal to lease fencing (see [`Claim`]), not part of the
    /// API.
    #[serde(skip)]
    pub claim_number: i64,
    /// Whether the lease holder executes the run alone (no other process
    /// helps: `assay run`'s runs). Set by the holder when it starts the
    /// run; internal, not part of the API.
    #[serde(skip)]
    pub exclusive: bool,
    /// The run whose stored target outputs this run re-scores (`assay
    /// runs rescore`); `None` for a run that called its target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Fields of a new run (created `pending`, zero counts).
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// A caller-chosen id (`None`: a new UUID v7).
    pub id: Option<String>,
    pub dataset_id: String,
    pub dataset_version: i64,
    pub target_type: TargetType,
    pub target_id: String,
    pub scorer_ids: Vec<String>,
    pub config: Value,
    /// Trials: items at `dataset_version` (the caller counts them with
    /// `count_items_at_version`; creating a run writes no per-item rows)
    /// times `repeats`.
    pub total_items: i64,
    /// How many times each item is executed (at least 1).
    pub repeats: i64,
    /// The run whose target outputs this run re-scores (see
    /// [`Run::parent_run_id`]).
    pub parent_run_id: Option<String>,
}

/// One claim of a run's lease: the process that holds it (`owner`) and
/// which claim of the run it is (`number`, incremented by every claim).
///
/// Every fenced call (result writes, lease renewal, release, finish)
/// compares both, so two executions of one run in one process (the run
/// claimed again after its lease lapsed) are told apart: only the latest
/// claim may write.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Claim {
    pub owner: String,
    pub number: i64,
}

impl Claim {
    /// The claim `owner` got when it claimed `run` (the row the claim
    /// returned).
    pub fn of(owner: impl Into<String>, run: &Run) -> Self {
        Self {
            owner: owner.into(),
            number: run.claim_number,
        }
    }
}

/// What marking a chunk done ([`crate::RunStore::finish_chunk`]) says of
/// the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkDone {
    /// Positions are still to be handed out, or some chunk is not done.
    RunOpen,
    /// Every position is handed out and every chunk is done: what
    /// [`ChunkGrant::Done`] would say, without the claim that asks it.
    AllDone,
}

/// What [`crate::RunStore::claim_chunk`] hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkGrant {
    /// Item positions `first..end` are the claim's until its lease lapses.
    Chunk { first: i64, end: i64 },
    /// Every position is handed out and some chunk is still held under a
    /// live lease (by this claim or another): wait for it, or leave.
    Busy,
    /// Every chunk is done.
    Done,
    /// The run is not running (finished, or not started).
    Stopped,
}

/// What the lease holder learns when it renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunControl {
    /// Someone asked to cancel the run: start no new items, finish as
    /// `cancelled`.
    pub cancel_requested: bool,
}

/// One scorer's verdict on one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreRow {
    pub scorer_id: String,
    pub scorer_name: String,
    /// `None` when the scorer failed (see `error`).
    pub score: Option<f64>,
    pub reason: Option<String>,
    pub error: Option<String>,
    pub metadata: Option<Value>,
}

/// The stored result of one item in one run, with its scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    pub id: String,
    pub run_id: String,
    pub item_id: String,
    /// The item's position index in the run (0..total, dataset order).
    pub item_index: i64,
    /// Which execution of the item this is (0-based; always 0 in a run
    /// without repeats).
    #[serde(default)]
    pub trial: i64,
    pub item_version: i64,
    pub input: Value,
    pub output: Option<Value>,
    pub expected_output: Option<Value>,
    /// Milliseconds.
    pub latency: f64,
    pub error: Option<String>,
    /// A machine-readable error class (`timeout`, `transient`, ...).
    pub error_kind: Option<String>,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub retry_count: i64,
    pub trace_id: Option<String>,
    /// What the target reported about its call (token usage, model,
    /// latency); contract 0.2 targets only.
    pub target_metadata: Option<Value>,
    pub logs: Option<Value>,
    pub scores: Vec<ScoreRow>,
    pub created_at: DateTime<Utc>,
}

/// A result to write: [`RunResult`] without the store-assigned fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewResult {
    pub item_id: String,
    pub item_index: i64,
    /// The trial (see [`RunResult::trial`]); `(run, item, trial)` is the
    /// idempotency key of a write.
    #[serde(default)]
    pub trial: i64,
    pub item_version: i64,
    pub input: Value,
    pub output: Option<Value>,
    pub expected_output: Option<Value>,
    pub latency: f64,
    /// `Some`: the item failed (counted in `failedCount`).
    pub error: Option<String>,
    pub error_kind: Option<String>,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub retry_count: i64,
    pub trace_id: Option<String>,
    /// What the target reported about its call (see [`RunResult`]).
    pub target_metadata: Option<Value>,
    pub logs: Option<Value>,
    pub scores: Vec<ScoreRow>,
}

/// What a target produced for one item of a run, as stored with its
/// result: what a re-scoring run reuses instead of calling the target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRecord {
    pub item_id: String,
    pub item_index: i64,
    pub trial: i64,
    pub output: Option<Value>,
    /// Milliseconds the target phase took in the original run.
    pub latency: f64,
    pub error: Option<String>,
    pub error_kind: Option<String>,
    pub retry_count: i64,
    pub trace_id: Option<String>,
    pub target_metadata: Option<Value>,
    pub logs: Option<Value>,
}

/// A model a run's target reported (`targetMetadata.model`, as the server
/// named it), and how many of the run's results it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelCount {
    pub model: String,
    pub items: i64,
}

/// What `write_results` did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// New result rows.
    pub inserted: u64,
    /// Results that were already stored for their `(run, item, trial)`
    /// (left as they were).
    pub duplicates: u64,
}

/// A registered plugin (scorer or target component).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginRecord {
    pub id: String,
    #[serde(skip)]
    pub tenant_id: String,
    pub kind: PluginKind,
    pub name: String,
    pub description: String,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    pub contract_version: String,
    /// Size of the component in bytes.
    pub size: i64,
    pub created_at: DateTime<Utc>,
}

/// What statistics need of a stored result: no input, output or logs, so
/// summarizing a large run reads a fraction of its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultOutline {
    pub item_id: String,
    pub item_index: i64,
    pub trial: i64,
    /// Milliseconds.
    pub latency: f64,
    pub error: Option<String>,
    pub error_kind: Option<String>,
    /// The token usage in the target's metadata, when it reported any
    /// (only the metadata's `usage` object is read from the database).
    pub usage: Option<crate::TokenUsage>,
    /// The scores, without their metadata (only its `usage` is read, into
    /// `score_usage`: a scorer's metadata can be large).
    pub scores: Vec<ScoreRow>,
    /// The token usage scorers reported in their scores' metadata (an LLM
    /// judge's calls), in score order; scores that reported none, or
    /// something that is not a count, are left out.
    pub score_usage: Vec<ScoreUsage>,
}

/// The token usage one scorer reported in the metadata of one score.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreUsage {
    pub scorer_id: String,
    pub usage: crate::TokenUsage,
}

/// Which of a run's results to list. The default lists them all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultFilter {
    /// Only results whose target or one of whose scorers failed.
    pub failed_only: bool,
    /// Only results that `scorer` scored below `below` (a scorer that
    /// failed gave no score, so it does not match).
    pub score_below: Option<ScoreBelow>,
}

/// A score threshold for [`ResultFilter`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreBelow {
    pub scorer_id: String,
    pub below: f64,
}

impl ResultFilter {
    /// True when the filter lets every result through.
    pub fn is_empty(&self) -> bool {
        !self.failed_only && self.score_below.is_none()
    }
}

/// A page request: `page` is 0-based, `per_page` defaults to 10, at most 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u32,
    pub per_page: u32,
}

/// A page of things plus the numbers a client needs to ask for the next.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
    pub has_more: bool,
}

/// The serde default of [`Run::repeats`] (runs stored before repeats).
fn one() -> i64 {
    1
}

/// Deserializes a present field (even `null`) as `Some(..)`, so that with
/// `#[serde(default)]` an absent field is `None` and `null` is `Some(None)`.
fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}
