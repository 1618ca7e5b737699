//! Comparing two runs of a dataset: per-scorer statistics, deltas,
//! regressions, and per-item score pairs (Mastra's `compareRuns`, with its
//! item-grouping bug fixed: items are matched by item id).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use assay_store::{Run, RunResult, Store};
use serde::{Deserialize, Serialize};

use crate::error::RunError;
use crate::stats::{DEFAULT_PASS_THRESHOLD, ScoreTally, tally_by_scorer};

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
    /// Scores in run A, by scorer id.
    pub scores_a: BTreeMap<String, Option<f64>>,
    /// Scores in run B, by scorer id.
    pub scores_b: BTreeMap<String, Option<f64>>,
    /// Error of the target in run A / run B.
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
    /// Per item, in dataset order.
    pub items: Vec<ItemComparison>,
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
}

/// Options of a comparison.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// Per-scorer thresholds (default: 0, higher is better).
    pub thresholds: HashMap<String, Threshold>,
    /// Pass threshold for pass rates (default 0.5).
    pub pass_threshold: Option<f64>,
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
    let results_a = all_results(store, tenant, &a.id).await?;
    let results_b = all_results(store, tenant, &b.id).await?;
    Ok(compare_results(&a, &b, &results_a, &results_b, options))
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

async fn all_results(
    store: &Arc<dyn Store>,
    tenant: &str,
    run_id: &str,
) -> Result<Vec<RunResult>, RunError> {
    let mut out = Vec::new();
    assay_store::for_each_result_page(store.as_ref(), tenant, run_id, 1000, |page| {
        out.extend(page);
        Ok::<_, RunError>(())
    })
    .await?;
    Ok(out)
}

/// The pure part of [`compare_runs`].
pub fn compare_results(
    a: &Run,
    b: &Run,
    results_a: &[RunResult],
    results_b: &[RunResult],
    options: &CompareOptions,
) -> ComparisonResult {
    let pass = options.pass_threshold.unwrap_or(DEFAULT_PASS_THRESHOLD);
    let scorer_ids: BTreeSet<String> = results_a
        .iter()
        .chain(results_b)
        .flat_map(|r| r.scores.iter().map(|s| s.scorer_id.clone()))
        .chain(a.scorer_ids.iter().cloned())
        .chain(b.scorer_ids.iter().cloned())
        .collect();
    let threshold_of = |id: &str| options.thresholds.get(id).copied().unwrap_or_default();

    let tallies_a = tally_by_scorer(results_a, pass);
    let tallies_b = tally_by_scorer(results_b, pass);
    let stats_of = |tallies: &HashMap<String, ScoreTally>, id: &str| {
        ScorerStats::from(tallies.get(id).copied().unwrap_or_default())
    };
    let mut scorers = BTreeMap::new();
    for id in &scorer_ids {
        let stats_a = stats_of(&tallies_a, id);
        let stats_b = stats_of(&tallies_b, id);
        let threshold = threshold_of(id);
        let delta = match (stats_a.avg_score, stats_b.avg_score) {
            (Some(x), Some(y)) => Some(y - x),
            _ => None,
        };
        let regressed = delta.is_some_and(|d| worse(d, threshold));
        scorers.insert(
            id.clone(),
            ScorerComparison {
                stats_a,
                stats_b,
                delta,
                regressed,
                threshold,
            },
        );
    }

    let by_id_b: HashMap<&str, &RunResult> =
        results_b.iter().map(|r| (r.item_id.as_str(), r)).collect();
    let ids_a: BTreeSet<&str> = results_a.iter().map(|r| r.item_id.as_str()).collect();
    let mut items: Vec<ItemComparison> = Vec::new();
    for ra in results_a {
        let rb = by_id_b.get(ra.item_id.as_str()).copied();
        items.push(item_pair(Some(ra), rb, &threshold_of));
    }
    for rb in results_b
        .iter()
        .filter(|r| !ids_a.contains(r.item_id.as_str()))
    {
        items.push(item_pair(None, Some(rb), &threshold_of));
    }
    items.sort_by_key(|i| i.item_index);

    let mut warnings = Vec::new();
    let version_mismatch = a.dataset_version != b.dataset_version;
    if version_mismatch {
        warnings.push(format!(
            "the runs used different dataset versions ({} and {}): items may differ",
            a.dataset_version, b.dataset_version
        ));
    }
    if results_a.is_empty() || results_b.is_empty() {
        warnings.push("one or both runs have no results".into());
    } else if !items.iter().any(|i| i.in_both_runs) {
        warnings.push("the runs have no items in common".into());
    }
    ComparisonResult {
        run_a: run_ref(a),
        run_b: run_ref(b),
        version_mismatch,
        has_regression: scorers.values().any(|s| s.regressed),
        scorers,
        items,
        warnings,
    }
}

fn run_ref(run: &Run) -> RunRef {
    RunRef {
        id: run.id.clone(),
        dataset_version: run.dataset_version,
        status: run.status.to_string(),
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

fn scores_of(r: Option<&RunResult>) -> BTreeMap<String, Option<f64>> {
    r.map(|r| {
        r.scores
            .iter()
            .map(|s| (s.scorer_id.clone(), s.score))
            .collect()
    })
    .unwrap_or_default()
}

fn item_pair(
    a: Option<&RunResult>,
    b: Option<&RunResult>,
    threshold_of: &dyn Fn(&str) -> Threshold,
) -> ItemComparison {
    let scores_a = scores_of(a);
    let scores_b = scores_of(b);
    let error_a = a.and_then(|r| r.error.clone());
    let error_b = b.and_then(|r| r.error.clone());
    let in_both = a.is_some() && b.is_some();
    let score_regressed = scores_a.iter().any(|(id, sa)| {
        matches!((sa, scores_b.get(id)), (Some(x), Some(Some(y))) if worse(y - x, threshold_of(id)))
    });
    let newly_failed = in_both && error_a.is_none() && error_b.is_some();
    ItemComparison {
        item_id: a.or(b).map(|r| r.item_id.clone()).unwrap_or_default(),
        item_index: a.or(b).map(|r| r.item_index).unwrap_or_default(),
        in_both_runs: in_both,
        scores_a,
        scores_b,
        error_a,
        error_b,
        regressed: in_both && (score_regressed || newly_failed),
    }
}
