//! Comparing two runs of a dataset: per-scorer statistics, deltas,
//! regressions, and per-item score pairs (Mastra's `compareRuns`, with its
//! item-grouping bug fixed: items are matched by item id).
//!
//! Both runs are walked side by side in item index order, a page of
//! outlines (no inputs or outputs) at a time: the statistics are tallied
//! as the walk goes and only one window of item pairs is kept, so comparing
//! two 100k-item runs holds a page, not the runs.
//!
//! The unit is the item: a run with repeats has several trials per item,
//! and an item's score is the mean of its trials' scores. Per scorer, a
//! paired t-test over the items scored in both runs says whether the
//! difference is significant ([`crate::significance`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use assay_store::{ResultOutline, Run, Store};
use serde::{Deserialize, Serialize};

use crate::error::RunError;
use crate::significance::{Moments, PairedTest};
use crate::stats::{DEFAULT_PASS_THRESHOLD, ScoreTally};

/// Outlines read per page of either run.
const WALK_PAGE: i64 = 1_000;
/// Item pairs listed when the caller does not say.
pub const DEFAULT_ITEM_LIMIT: usize = 1_000;

/// Which way is better for a scorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Higher scores are better (the default).
    #[default]
    HigherIsBetter,
    /// Lower scores are better.
    LowerIsBetter,
}

/// How much a scorer's mean may move the wrong way before it counts as a
/// regression.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Threshold {
    /// Tolerated change (0: any change the wrong way regresses).
    #[serde(default)]
    pub value: f64,
    /// Which way is better.
    #[serde(default)]
    pub direction: Direction,
}

/// Statistics of one scorer over one run (computed by
/// [`crate::stats::ScoreTally`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScorerStats {
    /// Scored items whose score is missing (the scorer failed).
    pub error_count: u64,
    /// `error_count / total_items`.
    pub error_rate: f64,
    /// Items with a score at or above the pass threshold.
    pub pass_count: u64,
    /// `pass_count / score_count`.
    pub pass_rate: f64,
    /// Mean of the present scores (`None` when there is none).
    pub avg_score: Option<f64>,
    /// Items with a score.
    pub score_count: u64,
    /// Items this scorer was asked to grade.
    pub total_items: u64,
}

/// One scorer across the two runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScorerComparison {
    /// Stats in run A (the baseline).
    pub stats_a: ScorerStats,
    /// Stats in run B (the candidate).
    pub stats_b: ScorerStats,
    /// `avg_b - avg_a` (`None` if either mean is missing).
    pub delta: Option<f64>,
    /// True when the mean moved the wrong way by more than the threshold.
    pub regressed: bool,
    /// The threshold applied.
    pub threshold: Threshold,
    /// The paired t-test of the per-item differences (B - A) over the
    /// items scored in both runs; `None` below two such items.
    pub significance: Option<PairedTest>,
}

/// One item's scores in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemComparison {
    /// The item id.
    pub item_id: String,
    /// The item's dataset index (from whichever run has it).
    pub item_index: i64,
    /// Both runs have a result for the item.
    pub in_both_runs: bool,
    /// Scores in run A, by scorer id (with repeats: the mean over the
    /// item's trials that have a score).
    pub scores_a: BTreeMap<String, Option<f64>>,
    /// Scores in run B, by scorer id.
    pub scores_b: BTreeMap<String, Option<f64>>,
    /// Error of the target in run A (with repeats: of its first failed
    /// trial).
    pub error_a: Option<String>,
    /// Error of the target in run B.
    pub error_b: Option<String>,
    /// Some scorer got worse for this item (beyond its threshold), or the
    /// item failed in B but not in A.
    pub regressed: bool,
}

/// The outcome of [`compare_runs`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComparisonResult {
    /// Baseline run.
    pub run_a: RunRef,
    /// Candidate run.
    pub run_b: RunRef,
    /// The runs pinned different dataset versions.
    pub version_mismatch: bool,
    /// Any scorer regressed.
    pub has_regression: bool,
    /// Per scorer id.
    pub scorers: BTreeMap<String, ScorerComparison>,
    /// Items with a result in either run.
    pub items_total: u64,
    /// Items that regressed (see [`ItemComparison::regressed`]).
    pub regressed_items: u64,
    /// One window of the items, in dataset order (see [`ItemWindow`]).
    pub items: Vec<ItemComparison>,
    /// The item index to pass as `after_index` for the next window; `None`
    /// when this window holds the last matching item.
    pub next_after_index: Option<i64>,
    /// Things the reader should know (version mismatch, no overlap, ...).
    pub warnings: Vec<String>,
}

/// Identifies a compared run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRef {
    /// Run id.
    pub id: String,
    /// Pinned dataset version.
    pub dataset_version: i64,
    /// Run status.
    pub status: String,
    /// Trials per item.
    pub repeats: i64,
}

/// Options of a comparison.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// Per-scorer thresholds (default: 0, higher is better).
    pub thresholds: HashMap<String, Threshold>,
    /// Pass threshold for pass rates (default 0.5).
    pub pass_threshold: Option<f64>,
    /// Which item pairs to list.
    pub items: ItemWindow,
}

/// Which item pairs a comparison lists: up to `limit` of them after item
/// index `after_index`, optionally only the regressed ones. Statistics
/// always cover every item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemWindow {
    /// List items after this index (`None`: from the first).
    pub after_index: Option<i64>,
    /// Most items listed.
    pub limit: usize,
    /// List only items that regressed.
    pub regressed_only: bool,
}

impl Default for ItemWindow {
    fn default() -> Self {
        Self {
            after_index: None,
            limit: DEFAULT_ITEM_LIMIT,
            regressed_only: false,
        }
    }
}

/// Compares run `a` (baseline) with run `b` (candidate). Both must belong to
/// `dataset_id` (else NotFound, like an unknown run).
pub async fn compare_runs(
    store: &Arc<dyn Store>,
    tenant: &str,
    dataset_id: &str,
    run_a: &str,
    run_b: &str,
    options: &CompareOptions,
) -> Result<ComparisonResult, RunError> {
    let a = run_of_dataset(store, tenant, dataset_id, run_a).await?;
    let b = run_of_dataset(store, tenant, dataset_id, run_b).await?;
    let mut walk = Walk::new(&a, &b, options);
    let mut side_a = Side::new(store, tenant, &a.id);
    let mut side_b = Side::new(store, tenant, &b.id);
    loop {
        let (next_a, next_b) = (side_a.peek().await?, side_b.peek().await?);
        let (ra, rb) = match (next_a, next_b) {
            (None, None) => break,
            (Some(x), Some(y)) if x == y => (side_a.take(), side_b.take()),
            (Some(x), Some(y)) if x < y => (side_a.take(), Vec::new()),
            (Some(_), None) => (side_a.take(), Vec::new()),
            _ => (Vec::new(), side_b.take()),
        };
        walk.add(&ra, &rb);
    }
    Ok(walk.finish(&a, &b))
}

/// One run's outlines in item index order, read a page at a time.
struct Side<'a> {
    store: &'a Arc<dyn Store>,
    tenant: &'a str,
    run_id: &'a str,
    page: std::collections::VecDeque<ResultOutline>,
    after_index: i64,
    done: bool,
}

impl<'a> Side<'a> {
    fn new(store: &'a Arc<dyn Store>, tenant: &'a str, run_id: &'a str) -> Self {
        Self {
            store,
            tenant,
            run_id,
            page: Default::default(),
            after_index: -1,
            done: false,
        }
    }

    /// The item index of the next item, reading a page when needed.
    async fn peek(&mut self) -> Result<Option<i64>, RunError> {
        if self.page.is_empty() && !self.done {
            let mut page = self
                .store
                .result_outlines_by_index(self.tenant, self.run_id, self.after_index, WALK_PAGE)
                .await?;
            self.done = (page.len() as i64) < WALK_PAGE;
            if !self.done {
                // A full page may end inside the trials of its last item:
                // that item is read again, whole, with the next page (a
                // page holds many items: trials per item are capped far
                // below the page size).
                let last = page.last().map(|o| o.item_index);
                if page.iter().any(|o| Some(o.item_index) != last) {
                    page.retain(|o| Some(o.item_index) != last);
                }
            }
            if let Some(last) = page.last() {
                self.after_index = last.item_index;
            }
            self.page = page.into();
        }
        Ok(self.page.front().map(|o| o.item_index))
    }

    /// Every trial of the next item.
    fn take(&mut self) -> Vec<ResultOutline> {
        let Some(index) = self.page.front().map(|o| o.item_index) else {
            return Vec::new();
        };
        let mut trials = Vec::with_capacity(1);
        while let Some(o) = self.page.pop_front_if(|o| o.item_index == index) {
            trials.push(o);
        }
        trials
    }
}

/// The comparison being built while both runs are walked.
struct Walk<'o> {
    options: &'o CompareOptions,
    pass: f64,
    tallies_a: HashMap<String, ScoreTally>,
    tallies_b: HashMap<String, ScoreTally>,
    /// Per scorer: the per-item differences B - A of the items scored in
    /// both runs.
    differences: HashMap<String, Moments>,
    results_a: u64,
    results_b: u64,
    in_both: u64,
    items_total: u64,
    regressed_items: u64,
    items: Vec<ItemComparison>,
    next_after_index: Option<i64>,
    scorer_ids: BTreeSet<String>,
}

impl<'o> Walk<'o> {
    fn new(a: &Run, b: &Run, options: &'o CompareOptions) -> Self {
        Self {
            options,
            pass: options.pass_threshold.unwrap_or(DEFAULT_PASS_THRESHOLD),
            tallies_a: HashMap::new(),
            tallies_b: HashMap::new(),
            differences: HashMap::new(),
            results_a: 0,
            results_b: 0,
            in_both: 0,
            items_total: 0,
            regressed_items: 0,
            items: Vec::new(),
            next_after_index: None,
            scorer_ids: a.scorer_ids.iter().chain(&b.scorer_ids).cloned().collect(),
        }
    }

    fn threshold_of(&self, id: &str) -> Threshold {
        self.options.thresholds.get(id).copied().unwrap_or_default()
    }

    /// Adds one item: its trials in run A and in run B (empty where the run
    /// has no result for it).
    fn add(&mut self, a: &[ResultOutline], b: &[ResultOutline]) {
        for (trials, tallies, count) in [
            (a, &mut self.tallies_a, &mut self.results_a),
            (b, &mut self.tallies_b, &mut self.results_b),
        ] {
            *count += u64::from(!trials.is_empty());
            for score in trials.iter().flat_map(|r| &r.scores) {
                if !self.scorer_ids.contains(&score.scorer_id) {
                    self.scorer_ids.insert(score.scorer_id.clone());
                }
                tallies
                    .entry(score.scorer_id.clone())
                    .or_default()
                    .record(score.score, self.pass);
            }
        }
        let pair = item_pair(a, b, &|id| self.threshold_of(id));
        for (id, score_a) in &pair.scores_a {
            if let (Some(x), Some(Some(y))) = (score_a, pair.scores_b.get(id)) {
                self.differences.entry(id.clone()).or_default().push(y - x);
            }
        }
        self.items_total += 1;
        self.in_both += u64::from(pair.in_both_runs);
        self.regressed_items += u64::from(pair.regressed);
        let window = self.options.items;
        let listed = window
            .after_index
            .is_none_or(|after| pair.item_index > after)
            && (pair.regressed || !window.regressed_only);
        if !listed || self.next_after_index.is_some() {
            return;
        }
        if self.items.len() < window.limit {
            self.items.push(pair);
        } else {
            // One more matching item exists: the window ends at the last
            // listed one.
            self.next_after_index = self.items.last().map(|i| i.item_index);
        }
    }

    fn finish(self, a: &Run, b: &Run) -> ComparisonResult {
        let stats_of = |tallies: &HashMap<String, ScoreTally>, id: &str| {
            ScorerStats::from(tallies.get(id).copied().unwrap_or_default())
        };
        let mut scorers = BTreeMap::new();
        for id in &self.scorer_ids {
            let stats_a = stats_of(&self.tallies_a, id);
            let stats_b = stats_of(&self.tallies_b, id);
            let threshold = self.threshold_of(id);
            let delta = match (stats_a.avg_score, stats_b.avg_score) {
                (Some(x), Some(y)) => Some(y - x),
                _ => None,
            };
            let regressed = delta.is_some_and(|d| worse(d, threshold));
            let significance = self.differences.get(id).and_then(PairedTest::of);
            scorers.insert(
                id.clone(),
                ScorerComparison {
                    stats_a,
                    stats_b,
                    delta,
                    regressed,
                    threshold,
                    significance,
                },
            );
        }
        let mut warnings = Vec::new();
        let version_mismatch = a.dataset_version != b.dataset_version;
        if version_mismatch {
            warnings.push(format!(
                "the runs used different dataset versions ({} and {}): items may differ",
                a.dataset_version, b.dataset_version
            ));
        }
        if self.results_a == 0 || self.results_b == 0 {
            warnings.push("one or both runs have no results".into());
        } else if self.in_both == 0 {
            warnings.push("the runs have no items in common".into());
        }
        ComparisonResult {
            run_a: run_ref(a),
            run_b: run_ref(b),
            version_mismatch,
            has_regression: scorers.values().any(|s| s.regressed),
            scorers,
            items_total: self.items_total,
            regressed_items: self.regressed_items,
            items: self.items,
            next_after_index: self.next_after_index,
            warnings,
        }
    }
}

async fn run_of_dataset(
    store: &Arc<dyn Store>,
    tenant: &str,
    dataset_id: &str,
    run_id: &str,
) -> Result<Run, RunError> {
    let run = store.get_run(tenant, run_id).await?;
    if run.dataset_id != dataset_id {
        return Err(assay_store::StoreError::NotFound {
            what: "Run",
            id: run_id.to_string(),
        }
        .into());
    }
    Ok(run)
}

fn run_ref(run: &Run) -> RunRef {
    RunRef {
        id: run.id.clone(),
        dataset_version: run.dataset_version,
        status: run.status.to_string(),
        repeats: run.repeats,
    }
}

fn worse(delta: f64, t: Threshold) -> bool {
    match t.direction {
        Direction::HigherIsBetter => delta < -t.value,
        Direction::LowerIsBetter => delta > t.value,
    }
}

impl From<ScoreTally> for ScorerStats {
    fn from(t: ScoreTally) -> Self {
        let total = t.total();
        Self {
            error_count: t.errors,
            error_rate: if total > 0 {
                t.errors as f64 / total as f64
            } else {
                0.0
            },
            pass_count: t.passed,
            pass_rate: t.pass_rate().unwrap_or(0.0),
            avg_score: t.mean(),
            score_count: t.scored,
            total_items: total,
        }
    }
}

/// Each scorer's score of one item: the mean of the scores its trials got
/// (`None` when no trial has one; the trial itself without repeats).
fn scores_of(trials: &[ResultOutline]) -> BTreeMap<String, Option<f64>> {
    if let [one] = trials {
        return one
            .scores
            .iter()
            .map(|s| (s.scorer_id.clone(), s.score))
            .collect();
    }
    let mut sums: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    for s in trials.iter().flat_map(|r| &r.scores) {
        let (sum, n) = sums.entry(s.scorer_id.clone()).or_default();
        if let Some(v) = s.score {
            *sum += v;
            *n += 1;
        }
    }
    sums.into_iter()
        .map(|(id, (sum, n))| (id, (n > 0).then(|| sum / f64::from(n))))
        .collect()
}

fn item_pair(
    a: &[ResultOutline],
    b: &[ResultOutline],
    threshold_of: &dyn Fn(&str) -> Threshold,
) -> ItemComparison {
    let scores_a = scores_of(a);
    let scores_b = scores_of(b);
    let error_a = a.iter().find_map(|r| r.error.clone());
    let error_b = b.iter().find_map(|r| r.error.clone());
    let in_both = !a.is_empty() && !b.is_empty();
    let score_regressed = scores_a.iter().any(|(id, sa)| {
        matches!((sa, scores_b.get(id)), (Some(x), Some(Some(y))) if worse(y - x, threshold_of(id)))
    });
    let newly_failed = in_both && error_a.is_none() && error_b.is_some();
    ItemComparison {
        item_id: a
            .first()
            .or(b.first())
            .map(|r| r.item_id.clone())
            .unwrap_or_default(),
        item_index: a
            .first()
            .or(b.first())
            .map(|r| r.item_index)
            .unwrap_or_default(),
        in_both_runs: in_both,
        scores_a,
        scores_b,
        error_a,
        error_b,
        regressed: in_both && (score_regressed || newly_failed),
    }
}
