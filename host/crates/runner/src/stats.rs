//! Statistics of one run, computed from its results: per-scorer means and
//! pass rates, latency percentiles, failures grouped by error.
//!
//! This is the one place these numbers are computed. `assay run` feeds a
//! [`StatsBuilder`] one finished item at a time (from the executor's
//! callback, so memory grows only by one float per item); `assay runs show`
//! and `GET /api/datasets/{datasetId}/runs/{runId}/summary` feed it the
//! stored results ([`summarize_stored`]); [`crate::compare`] uses the same
//! per-scorer [`ScoreTally`] for both runs it compares.

use std::collections::HashMap;
use std::sync::Arc;

use assay_store::{
    ResultOutline, Run, RunResult, RunStatus, ScoreRow, ScoreUsage, Store, TokenUsage,
};
use serde::Serialize;

use crate::error::RunError;
use crate::item::ItemWithScores;
use crate::significance::{MeanEstimate, Moments};

/// A score at or above this passes, unless the caller says otherwise.
pub const DEFAULT_PASS_THRESHOLD: f64 = 0.5;
/// Example items listed per failure group.
const EXAMPLES_PER_GROUP: usize = 5;
/// Results read per page when summarizing a stored run.
const RESULTS_PAGE: i64 = 1000;

/// Bins of a score histogram: `[0, 0.1)`, `[0.1, 0.2)`, ... `[0.9, 1]`.
pub const HISTOGRAM_BINS: usize = 10;

/// The histogram bin of a score in `[0, 1]` (out-of-range scores land in
/// the first or last bin).
pub fn histogram_bin(score: f64) -> usize {
    ((score * HISTOGRAM_BINS as f64).floor().max(0.0) as usize).min(HISTOGRAM_BINS - 1)
}

/// The scores one scorer gave over one run, tallied.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreTally {
    /// Sum of the present scores.
    pub sum: f64,
    /// Items with a score.
    pub scored: u64,
    /// Items with a score at or above the pass threshold.
    pub passed: u64,
    /// Items where the scorer failed (no score).
    pub errors: u64,
    /// Present scores per [`histogram_bin`].
    pub histogram: [u64; HISTOGRAM_BINS],
}

impl ScoreTally {
    /// Counts one score (`None`: the scorer failed on the item).
    pub fn record(&mut self, score: Option<f64>, pass_threshold: f64) {
        match score {
            Some(v) => {
                self.sum += v;
                self.scored += 1;
                self.histogram[histogram_bin(v)] += 1;
                if v >= pass_threshold {
                    self.passed += 1;
                }
            }
            None => self.errors += 1,
        }
    }

    /// Items the scorer was asked to grade.
    pub fn total(&self) -> u64 {
        self.scored + self.errors
    }

    /// Mean of the present scores (`None` when there is none).
    pub fn mean(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.sum / self.scored as f64)
    }

    /// Share of the present scores at or above the pass threshold.
    pub fn pass_rate(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.passed as f64 / self.scored as f64)
    }
}

/// Tallies the scores of `results` per scorer id.
pub fn tally_by_scorer<'a>(
    results: impl IntoIterator<Item = &'a RunResult>,
    pass_threshold: f64,
) -> HashMap<String, ScoreTally> {
    let mut tallies: HashMap<String, ScoreTally> = HashMap::new();
    for score in results.into_iter().flat_map(|r| r.scores.iter()) {
        tallies
            .entry(score.scorer_id.clone())
            .or_default()
            .record(score.score, pass_threshold);
    }
    tallies
}

/// The statistics of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStats {
    /// Run id.
    pub run_id: String,
    /// Run status.
    pub status: RunStatus,
    /// Dataset id.
    pub dataset_id: String,
    /// Dataset name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    /// Pinned dataset version.
    pub dataset_version: i64,
    /// Target plugin id.
    pub target_id: String,
    /// Trials to run: items in the pinned version times `repeats`.
    pub total_items: i64,
    /// Trials per item (1: no repeats). The counts below count trials.
    pub repeats: i64,
    /// Items whose target succeeded.
    pub succeeded_count: i64,
    /// Items whose target failed.
    pub failed_count: i64,
    /// Items never run (cancelled, or not reached).
    pub skipped_count: i64,
    /// Items not finished yet (a run still in progress).
    pub pending_count: i64,
    /// Why the run failed as a whole, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall-clock time from start to end (or to now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// Finished items per second over that time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_per_second: Option<f64>,
    /// Latency of the items (target call with retries), in ms.
    pub latency_ms: LatencyStats,
    /// Tokens the target reported in its metadata, summed over the run's
    /// items (absent when no item reported usage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_usage: Option<RunTokenUsage>,
    /// Tokens the scorers reported in their scores' metadata (an LLM
    /// judge's calls), summed over all scorers and items; kept apart from
    /// the target's `token_usage`. Each scorer's own sum is on its
    /// [`ScorerSummary`]. Absent when no score reported usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scorer_token_usage: Option<ScorerTokenUsage>,
    /// Items whose output came from the output cache (the target was not
    /// called for them; their latency and token usage are those of the
    /// call that produced the output).
    pub cached_count: u64,
    /// The score at or above which an item passes.
    pub pass_threshold: f64,
    /// One entry per scorer, in the run's order.
    pub scorers: Vec<ScorerSummary>,
    /// Failures grouped by identical error, largest group first.
    pub failures: Vec<FailureGroup>,
}

/// Latency percentiles over finished items.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyStats {
    /// Items measured.
    pub count: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// Slowest.
    pub max: Option<f64>,
}

/// Token usage summed over a run's items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTokenUsage {
    /// The sums (`promptTokens`, `completionTokens`, `totalTokens`).
    #[serde(flatten)]
    pub tokens: TokenUsage,
    /// Items whose target reported usage.
    pub items: u64,
}

/// Token usage summed over the scores of a run (one scorer's, or all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScorerTokenUsage {
    /// The sums (`promptTokens`, `completionTokens`, `totalTokens`).
    #[serde(flatten)]
    pub tokens: TokenUsage,
    /// Scores whose metadata reported usage (one per item and scorer; one
    /// per trial in a run with repeats).
    pub scores: u64,
}

impl ScorerTokenUsage {
    fn add(&mut self, usage: TokenUsage) {
        self.tokens.add(usage);
        self.scores += 1;
    }
}

/// One scorer over one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScorerSummary {
    /// Scorer id.
    pub scorer_id: String,
    /// Scorer name.
    pub scorer_name: String,
    /// Mean of the scores (items whose target failed are not scored). In a
    /// run with repeats: the mean of the per-item means of the trials.
    pub mean: Option<f64>,
    /// Items with a score: the `n` of the uncertainty below (items, not
    /// trials, in a run with repeats).
    pub item_count: u64,
    /// Sample standard deviation of the (per-item mean) scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_deviation: Option<f64>,
    /// Standard error of `mean`: `standardDeviation / sqrt(itemCount)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_error: Option<f64>,
    /// 95% interval of `mean` (Student's t, `itemCount - 1` degrees of
    /// freedom; see [`crate::significance`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci95: Option<[f64; 2]>,
    /// Share of scores at or above the pass threshold (over trials in a
    /// run with repeats).
    pub pass_rate: Option<f64>,
    /// Scores at or above the pass threshold.
    pub pass_count: u64,
    /// Scores given (trials, in a run with repeats).
    pub scored_count: u64,
    /// Items (trials) where the scorer failed.
    pub error_count: u64,
    /// How many scores fell in each tenth of `[0, 1]` (`[0, 0.1)` first,
    /// `[0.9, 1]` last).
    pub histogram: [u64; HISTOGRAM_BINS],
    /// Tokens this scorer reported in its scores' metadata (an LLM judge),
    /// absent when none of its scores reported usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_usage: Option<ScorerTokenUsage>,
}

/// Items that failed with the same error.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureGroup {
    /// `target`, or the id of the scorer that failed.
    pub source: String,
    /// Error class (`timeout`, `transient`, ...), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The error message.
    pub message: String,
    /// Items with this error.
    pub count: u64,
    /// Dataset indexes of the first few.
    pub item_indexes: Vec<i64>,
}

#[derive(Debug, Default)]
struct NamedTally {
    name: String,
    tally: ScoreTally,
    /// The scores, one per item (a run without repeats).
    moments: Moments,
    /// Sum and count of the scores of each item, by item index (a run with
    /// repeats: the trials of an item arrive at any time).
    per_item: HashMap<i64, (f64, u32)>,
    /// Tokens its scores reported.
    usage: Option<ScorerTokenUsage>,
}

impl NamedTally {
    /// The mean over items with its uncertainty.
    fn estimate(&self, repeated: bool) -> Option<MeanEstimate> {
        if !repeated {
            return self.moments.estimate();
        }
        let mut means = Moments::default();
        let mut items: Vec<_> = self.per_item.iter().collect();
        // Summed in item order, so that the result does not depend on the
        // order the trials finished in.
        items.sort_unstable_by_key(|(index, _)| **index);
        for (_, (sum, n)) in items {
            means.push(sum / f64::from(*n));
        }
        means.estimate()
    }
}

#[derive(Debug)]
struct FailureAcc {
    kind: Option<String>,
    count: u64,
    first_seen: usize,
    examples: Vec<i64>,
}

/// Accumulates finished items into [`RunStats`].
#[derive(Debug)]
pub struct StatsBuilder {
    pass_threshold: f64,
    /// The run has repeats: scores are grouped per item.
    repeated: bool,
    order: Vec<String>,
    scorers: HashMap<String, NamedTally>,
    latencies: Vec<f32>,
    failures: HashMap<(String, String), FailureAcc>,
    usage: Option<RunTokenUsage>,
    cached: u64,
}

impl StatsBuilder {
    /// A builder for a run with these scorers (their order is kept).
    pub fn new(scorer_ids: &[String], pass_threshold: f64) -> Self {
        let mut builder = Self {
            pass_threshold,
            repeated: false,
            order: Vec::new(),
            scorers: HashMap::new(),
            latencies: Vec::new(),
            failures: HashMap::new(),
            usage: None,
            cached: 0,
        };
        for id in scorer_ids {
            builder.scorer(id, id);
        }
        builder
    }

    /// For a run with `repeats` trials per item: the uncertainty of each
    /// scorer's mean is over per-item means (see [`crate::significance`]).
    pub fn with_repeats(mut self, repeats: i64) -> Self {
        self.repeated = repeats > 1;
        self
    }

    fn scorer(&mut self, id: &str, name: &str) -> &mut NamedTally {
        if !self.scorers.contains_key(id) {
            self.order.push(id.to_string());
        }
        let acc = self.scorers.entry(id.to_string()).or_default();
        if acc.name.is_empty() || acc.name == id {
            acc.name = name.to_string();
        }
        acc
    }

    /// Adds one finished item. Errors are grouped by message, with the
    /// item's own id taken out so that "item `x` has no ground truth" and
    /// "item `y` has no ground truth" are one group.
    pub fn add(
        &mut self,
        index: i64,
        item_id: &str,
        latency_ms: f64,
        error: Option<&str>,
        error_kind: Option<&str>,
        scores: &[ScoreRow],
    ) {
        self.latencies.push(latency_ms as f32);
        if let Some(message) = error {
            self.failure("target", &generalize(message, item_id), error_kind, index);
        }
        let (threshold, repeated) = (self.pass_threshold, self.repeated);
        for s in scores {
            let acc = self.scorer(&s.scorer_id, &s.scorer_name);
            acc.tally.record(s.score, threshold);
            match s.score {
                Some(v) if repeated => {
                    let (sum, n) = acc.per_item.entry(index).or_default();
                    *sum += v;
                    *n += 1;
                }
                Some(v) => acc.moments.push(v),
                None => {}
            }
            if s.score.is_none() {
                let message = generalize(s.error.as_deref().unwrap_or("scorer failed"), item_id);
                self.failure(&s.scorer_id, &message, None, index);
            }
        }
    }

    /// Counts the token usage one item's target reported.
    pub fn add_usage(&mut self, usage: TokenUsage) {
        let sum = self.usage.get_or_insert_with(RunTokenUsage::default);
        sum.tokens.add(usage);
        sum.items += 1;
    }

    /// Counts the token usage scorer `scorer_id` reported in one score's
    /// metadata.
    pub fn add_score_usage(&mut self, scorer_id: &str, usage: TokenUsage) {
        self.scorer(scorer_id, scorer_id)
            .usage
            .get_or_insert_default()
            .add(usage);
    }

    /// Counts the usage in the metadata of `scores` (what the executor
    /// reports and full stored results carry; outlines read it in the
    /// database instead).
    fn add_scores_usage(&mut self, scores: &[ScoreRow]) {
        for s in scores {
            if let Some(u) = s.metadata.as_ref().and_then(TokenUsage::from_metadata) {
                self.add_score_usage(&s.scorer_id, u);
            }
        }
    }

    /// Adds an item as the executor reports it.
    pub fn add_item(&mut self, item: &ItemWithScores) {
        let r = &item.result;
        self.add(
            item.index,
            &r.item_id,
            r.latency,
            r.error.as_deref(),
            r.error_kind.as_deref(),
            &r.scores,
        );
        if let Some(u) = r
            .target_metadata
            .as_ref()
            .and_then(TokenUsage::from_metadata)
        {
            self.add_usage(u);
        }
        self.add_scores_usage(&r.scores);
        self.count_cached(r.target_metadata.as_ref());
    }

    /// Counts an item whose output came from the output cache.
    fn count_cached(&mut self, target_metadata: Option<&serde_json::Value>) {
        if crate::cache::is_cached(target_metadata) {
            self.cached += 1;
        }
    }

    /// Adds a stored result.
    pub fn add_result(&mut self, r: &RunResult) {
        self.add(
            r.item_index,
            &r.item_id,
            r.latency,
            r.error.as_deref(),
            r.error_kind.as_deref(),
            &r.scores,
        );
        if let Some(u) = r
            .target_metadata
            .as_ref()
            .and_then(TokenUsage::from_metadata)
        {
            self.add_usage(u);
        }
        self.add_scores_usage(&r.scores);
        self.count_cached(r.target_metadata.as_ref());
    }

    /// Adds a stored result's outline.
    pub fn add_outline(&mut self, r: &ResultOutline) {
        self.add(
            r.item_index,
            &r.item_id,
            r.latency,
            r.error.as_deref(),
            r.error_kind.as_deref(),
            &r.scores,
        );
        if let Some(u) = r.usage {
            self.add_usage(u);
        }
        for ScoreUsage { scorer_id, usage } in &r.score_usage {
            self.add_score_usage(scorer_id, *usage);
        }
    }

    fn failure(&mut self, source: &str, message: &str, kind: Option<&str>, index: i64) {
        let next = self.failures.len();
        let acc = self
            .failures
            .entry((source.to_string(), message.to_string()))
            .or_insert_with(|| FailureAcc {
                kind: kind.map(str::to_string),
                count: 0,
                first_seen: next,
                examples: Vec::new(),
            });
        acc.count += 1;
        // The trials of one item (a run with repeats) are one example.
        if acc.examples.len() < EXAMPLES_PER_GROUP && !acc.examples.contains(&index) {
            acc.examples.push(index);
        }
    }

    /// The statistics of `run` (counts and timing come from the run row).
    pub fn finish(self, run: &Run) -> RunStats {
        let mut latencies = self.latencies;
        latencies.sort_by(f32::total_cmp);
        let latency_ms = latency_stats(&latencies);
        let scorers = self
            .order
            .iter()
            .map(|id| {
                let acc = &self.scorers[id];
                let (name, tally) = (&acc.name, &acc.tally);
                let estimate = acc.estimate(self.repeated);
                ScorerSummary {
                    scorer_id: id.clone(),
                    scorer_name: name.clone(),
                    // Without repeats the plain mean (the estimate's is the
                    // same number, summed differently).
                    mean: if self.repeated {
                        estimate.map(|e| e.mean)
                    } else {
                        tally.mean()
                    },
                    item_count: estimate.map_or(0, |e| e.n),
                    standard_deviation: estimate.and_then(|e| e.standard_deviation),
                    standard_error: estimate.and_then(|e| e.standard_error),
                    ci95: estimate.and_then(|e| e.ci95),
                    pass_rate: tally.pass_rate(),
                    pass_count: tally.passed,
                    scored_count: tally.scored,
                    error_count: tally.errors,
                    histogram: tally.histogram,
                    token_usage: acc.usage,
                }
            })
            .collect::<Vec<ScorerSummary>>();
        let scorer_token_usage =
            scorers
                .iter()
                .filter_map(|s| s.token_usage)
                .reduce(|mut sum, u| {
                    sum.tokens.add(u.tokens);
                    sum.scores += u.scores;
                    sum
                });
        let mut groups: Vec<(usize, FailureGroup)> = self
            .failures
            .into_iter()
            .map(|((source, message), acc)| {
                let mut examples = acc.examples;
                examples.sort_unstable();
                (
                    acc.first_seen,
                    FailureGroup {
                        source,
                        kind: acc.kind,
                        message,
                        count: acc.count,
                        item_indexes: examples,
                    },
                )
            })
            .collect();
        groups.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));

        let finished = run.succeeded_count + run.failed_count;
        let duration_ms = run.started_at.map(|start| {
            let end = run.completed_at.unwrap_or_else(chrono::Utc::now);
            (end - start).num_milliseconds().max(0) as f64
        });
        let items_per_second = duration_ms
            .filter(|&d| d > 0.0)
            .map(|d| (finished as f64 / (d / 1000.0) * 10.0).round() / 10.0);
        let pending_count = if run.status.is_terminal() {
            0
        } else {
            (run.total_items - finished).max(0)
        };
        RunStats {
            run_id: run.id.clone(),
            status: run.status,
            dataset_id: run.dataset_id.clone(),
            dataset_name: None,
            dataset_version: run.dataset_version,
            target_id: run.target_id.clone(),
            total_items: run.total_items,
            repeats: run.repeats,
            succeeded_count: run.succeeded_count,
            failed_count: run.failed_count,
            skipped_count: run.skipped_count,
            pending_count,
            error: run.error.clone(),
            duration_ms,
            items_per_second,
            latency_ms,
            token_usage: self.usage,
            scorer_token_usage,
            cached_count: self.cached,
            pass_threshold: self.pass_threshold,
            scorers,
            failures: groups.into_iter().map(|(_, g)| g).collect(),
        }
    }
}

/// The statistics of `run` from its stored results (read page by page),
/// with the dataset's name when it can be read.
pub async fn summarize_stored(
    store: &Arc<dyn Store>,
    tenant: &str,
    run: &Run,
    pass_threshold: f64,
) -> Result<RunStats, RunError> {
    let mut builder = StatsBuilder::new(&run.scorer_ids, pass_threshold).with_repeats(run.repeats);
    let mut after = 0;
    loop {
        let page = store
            .result_outlines_after_seq(tenant, &run.id, after, RESULTS_PAGE)
            .await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        page.iter().for_each(|(_, r)| builder.add_outline(r));
    }
    let mut stats = builder.finish(run);
    // Outlines leave the metadata out: one count over the run's results.
    stats.cached_count = store.cached_result_count(tenant, &run.id).await?.max(0) as u64;
    stats.dataset_name = store
        .get_dataset(tenant, &run.dataset_id)
        .await
        .ok()
        .map(|d| d.name);
    Ok(stats)
}

/// `message` with the item's id replaced by `<item>`.
fn generalize(message: &str, item_id: &str) -> String {
    if item_id.is_empty() {
        message.to_string()
    } else {
        message.replace(item_id, "<item>")
    }
}

fn latency_stats(sorted: &[f32]) -> LatencyStats {
    if sorted.is_empty() {
        return LatencyStats::default();
    }
    let pick = |q: f64| {
        // Nearest rank: the smallest value with at least q of the data at
        // or below it.
        let rank = (q * sorted.len() as f64).ceil() as usize;
        f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
    };
    let sum: f64 = sorted.iter().map(|&v| f64::from(v)).sum();
    LatencyStats {
        count: sorted.len() as u64,
        mean: Some(micros(sum / sorted.len() as f64)),
        p50: Some(micros(pick(0.50))),
        p95: Some(micros(pick(0.95))),
        max: sorted.last().map(|&v| micros(f64::from(v))),
    }
}

/// Milliseconds rounded to the microsecond (latencies are kept as `f32`).
fn micros(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn score(id: &str, v: Option<f64>) -> ScoreRow {
        ScoreRow {
            scorer_id: id.into(),
            scorer_name: format!("{id} scorer"),
            score: v,
            reason: None,
            error: v.is_none().then(|| "boom".to_string()),
            metadata: None,
        }
    }

    /// A completed run of 4 items (3 succeeded, 1 failed) that took 2 s.
    fn run() -> Run {
        let now = chrono::Utc::now();
        serde_json::from_value(json!({
            "id": "r1", "datasetId": "d1", "datasetVersion": 1,
            "targetType": "plugin", "targetId": "echo", "scorerIds": ["exact"],
            "status": "completed", "totalItems": 4, "succeededCount": 3,
            "failedCount": 1, "skippedCount": 0, "config": {}, "error": null,
            "cancelRequested": false,
            "startedAt": now - chrono::Duration::seconds(2), "completedAt": now,
            "createdAt": now, "updatedAt": now,
        }))
        .expect("a valid run")
    }

    #[test]
    fn means_pass_rates_percentiles_and_failure_groups() {
        let mut b = StatsBuilder::new(&["exact".into()], 0.5);
        b.add(0, "a", 10.0, None, None, &[score("exact", Some(1.0))]);
        b.add(1, "b", 20.0, None, None, &[score("exact", Some(0.0))]);
        b.add(2, "c", 30.0, None, None, &[score("exact", None)]);
        b.add(
            3,
            "d",
            40.0,
            Some("plugin exceeded its 1 s time limit"),
            Some("timeout"),
            &[],
        );
        let stats = b.finish(&run());
        let s = &stats.scorers[0];
        assert_eq!(s.scorer_name, "exact scorer");
        assert_eq!(s.mean, Some(0.5));
        assert_eq!(s.pass_rate, Some(0.5));
        assert_eq!((s.scored_count, s.error_count), (2, 1));
        assert_eq!(s.histogram, [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(stats.latency_ms.p50, Some(20.0));
        assert_eq!(stats.latency_ms.p95, Some(40.0));
        assert_eq!(stats.latency_ms.mean, Some(25.0));
        assert_eq!(stats.failures.len(), 2);
        assert_eq!(stats.items_per_second.map(f64::round), Some(2.0));
        assert!(stats.failures.iter().any(|g| g.source == "target"
            && g.kind.as_deref() == Some("timeout")
            && g.item_indexes == vec![3]));
        assert!(
            stats
                .failures
                .iter()
                .any(|g| g.source == "exact" && g.message == "boom")
        );
    }

    #[test]
    fn token_usage_is_summed_over_the_items_that_reported_it() {
        let mut b = StatsBuilder::new(&[], 0.5);
        assert_eq!(b.finish(&run()).token_usage, None, "nothing reported");
        b = StatsBuilder::new(&[], 0.5);
        for (p, c) in [(6, 4), (3, 2)] {
            b.add_usage(TokenUsage {
                prompt_tokens: p,
                completion_tokens: c,
                total_tokens: p + c,
            });
        }
        b.add(2, "c", 1.0, Some("boom"), None, &[]);
        let stats = b.finish(&run());
        let usage = stats.token_usage.expect("usage");
        assert_eq!(usage.items, 2);
        assert_eq!(
            (
                usage.tokens.prompt_tokens,
                usage.tokens.completion_tokens,
                usage.tokens.total_tokens
            ),
            (9, 6, 15)
        );
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            json["tokenUsage"],
            json!({"promptTokens": 9, "completionTokens": 6, "totalTokens": 15, "items": 2})
        );
    }

    /// A score whose metadata carries `usage` (or `None`: no metadata).
    fn judged(id: &str, metadata: Option<serde_json::Value>) -> ScoreRow {
        ScoreRow {
            metadata,
            ..score(id, Some(1.0))
        }
    }

    #[test]
    fn scorer_usage_is_summed_per_scorer_and_apart_from_the_targets() {
        let usage = |p: u64, c: u64| json!({"usage": {"promptTokens": p, "completionTokens": c, "totalTokens": p + c}, "model": "judge"});
        // The target's usage, the judges' usage, and score metadata that
        // holds no usable count: absent, not an error and not a zero.
        let items = [
            vec![
                judged("judge", Some(usage(30, 4))),
                judged("exact", Some(json!({"k": 1}))),
                judged(
                    "other",
                    Some(json!({"usage": {"prompt_tokens": 7, "completion_tokens": 1}})),
                ),
            ],
            vec![
                judged("judge", Some(usage(25, 3))),
                judged("exact", None),
                judged("other", Some(json!({"usage": "lots"}))),
            ],
            vec![
                judged("judge", Some(json!({"usage": {"totalTokens": -1}}))),
                judged("exact", Some(json!([1, 2]))),
                judged("other", Some(json!({"usage": {"totalTokens": 1.5}}))),
            ],
        ];
        let ids: Vec<String> = ["judge", "exact", "other"].map(String::from).into();
        let mut b = StatsBuilder::new(&ids, 0.5);
        for (i, scores) in items.iter().enumerate() {
            let result: RunResult = serde_json::from_value(json!({
                "id": format!("r{i}"), "runId": "r1", "itemId": format!("i{i}"),
                "itemIndex": i, "trial": 0, "itemVersion": 1, "input": {},
                "latency": 1.0, "startedAt": chrono::Utc::now(),
                "completedAt": chrono::Utc::now(), "retryCount": 0,
                "targetMetadata": usage(5, 1), "scores": scores,
                "createdAt": chrono::Utc::now(),
            }))
            .expect("a valid result");
            b.add_result(&result);
        }
        let stats = b.finish(&run());
        let target = stats.token_usage.expect("target usage");
        assert_eq!((target.tokens.total_tokens, target.items), (18, 3));
        let of = |id: &str| stats.scorers.iter().find(|s| s.scorer_id == id).unwrap();
        let judge = of("judge").token_usage.expect("judge usage");
        assert_eq!(
            (
                judge.tokens.prompt_tokens,
                judge.tokens.completion_tokens,
                judge.tokens.total_tokens,
                judge.scores
            ),
            (55, 7, 62, 2)
        );
        assert_eq!(of("exact").token_usage, None);
        let other = of("other").token_usage.expect("other usage");
        assert_eq!((other.tokens.total_tokens, other.scores), (8, 1));
        let all = stats.scorer_token_usage.expect("scorer usage");
        assert_eq!((all.tokens.total_tokens, all.scores), (70, 3));
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            json["scorerTokenUsage"],
            json!({"promptTokens": 62, "completionTokens": 8, "totalTokens": 70, "scores": 3})
        );
        assert_eq!(json["scorers"][0]["tokenUsage"]["scores"], 2);
        assert!(json["scorers"][1].get("tokenUsage").is_none());
        assert_eq!(
            json["tokenUsage"]["totalTokens"], 18,
            "the target's, unchanged"
        );
        assert!(
            serde_json::to_value(StatsBuilder::new(&ids, 0.5).finish(&run()))
                .unwrap()
                .get("scorerTokenUsage")
                .is_none(),
            "absent when no score reported usage"
        );
    }

    #[test]
    fn histogram_counts_each_tenth_with_one_in_the_last_bin() {
        let mut t = ScoreTally::default();
        for v in [0.0, 0.05, 0.1, 0.3, 0.55, 0.9, 0.99, 1.0] {
            t.record(Some(v), 0.5);
        }
        t.record(None, 0.5);
        assert_eq!(t.histogram, [2, 1, 0, 1, 0, 1, 0, 0, 0, 3]);
        assert_eq!(t.histogram.iter().sum::<u64>(), t.scored);
    }

    #[test]
    fn errors_naming_their_item_are_one_group() {
        let mut b = StatsBuilder::new(&[], 0.5);
        b.add(
            0,
            "id-1",
            1.0,
            Some("item `id-1` has no ground truth"),
            None,
            &[],
        );
        b.add(
            1,
            "id-2",
            1.0,
            Some("item `id-2` has no ground truth"),
            None,
            &[],
        );
        let stats = b.finish(&run());
        assert_eq!(stats.failures.len(), 1);
        assert_eq!(
            stats.failures[0].message,
            "item `<item>` has no ground truth"
        );
        assert_eq!(stats.failures[0].item_indexes, vec![0, 1]);
    }

    #[test]
    fn a_scorer_with_no_scores_has_no_mean_or_pass_rate() {
        let stats = StatsBuilder::new(&["exact".into()], 0.5).finish(&run());
        assert_eq!(stats.scorers[0].mean, None);
        assert_eq!(stats.scorers[0].pass_rate, None);
        assert_eq!(stats.latency_ms, LatencyStats::default());
    }

    #[test]
    fn a_tally_counts_scores_passes_and_errors() {
        let mut t = ScoreTally::default();
        for v in [Some(1.0), Some(0.5), Some(0.25), None] {
            t.record(v, 0.5);
        }
        assert_eq!((t.scored, t.passed, t.errors, t.total()), (3, 2, 1, 4));
        assert_eq!(t.mean(), Some(1.75 / 3.0));
        assert_eq!(t.pass_rate(), Some(2.0 / 3.0));
    }

    /// Four items, three trials each, fed in an interleaved order: the
    /// per-item means are 0.5, 0.7, 0.9 and 0.3, so (by hand) mean 0.6,
    /// sd √(0.2 / 3) = 0.2582 over items, SE = sd / √4 = 0.1291 and the
    /// 95% interval 0.6 ± 3.1824 · 0.1291 = [0.1892, 1.0108]. Over the 12
    /// trials the SE would be 0.0846: the unit is the item.
    #[test]
    fn repeats_give_a_mean_of_item_means_with_its_standard_error() {
        let trials: [(i64, [f64; 3]); 4] = [
            (0, [0.0, 0.5, 1.0]),
            (1, [0.6, 0.7, 0.8]),
            (2, [1.0, 0.8, 0.9]),
            (3, [0.3, 0.3, 0.3]),
        ];
        let mut b = StatsBuilder::new(&["exact".into()], 0.5).with_repeats(3);
        for trial in [2, 0, 1] {
            for (index, scores) in trials.iter().rev() {
                let v = scores[trial];
                b.add(*index, "x", 1.0, None, None, &[score("exact", Some(v))]);
            }
        }
        let mut repeated = run();
        repeated.repeats = 3;
        let stats = b.finish(&repeated);
        assert_eq!(stats.repeats, 3);
        let s = &stats.scorers[0];
        assert_eq!((s.item_count, s.scored_count), (4, 12));
        assert!((s.mean.unwrap() - 0.6).abs() < 1e-12);
        let sd = (0.2f64 / 3.0).sqrt();
        assert!((s.standard_deviation.unwrap() - sd).abs() < 1e-12);
        assert!((s.standard_error.unwrap() - sd / 2.0).abs() < 1e-12);
        let [lo, hi] = s.ci95.unwrap();
        assert!((lo - 0.189_154).abs() < 1e-5, "{lo}");
        assert!((hi - 1.010_846).abs() < 1e-5, "{hi}");
        // Pass counts stay over trials: 0.5 and 1.0 of item 0, the three
        // trials of items 1 and 2, none of item 3.
        assert_eq!(s.pass_count, 8);
    }

    #[test]
    fn without_repeats_the_uncertainty_is_over_the_items_scores() {
        let mut b = StatsBuilder::new(&["exact".into()], 0.5);
        for (i, v) in [0.5, 0.7, 0.9, 0.3].into_iter().enumerate() {
            b.add(i as i64, "x", 1.0, None, None, &[score("exact", Some(v))]);
        }
        let s = &b.finish(&run()).scorers[0];
        assert_eq!(s.item_count, 4);
        assert!((s.standard_error.unwrap() - (0.2f64 / 3.0).sqrt() / 2.0).abs() < 1e-12);
    }

    #[test]
    fn the_pass_threshold_decides_what_passes() {
        let mut strict = StatsBuilder::new(&["exact".into()], 0.9);
        let mut lax = StatsBuilder::new(&["exact".into()], 0.1);
        for b in [&mut strict, &mut lax] {
            b.add(0, "a", 1.0, None, None, &[score("exact", Some(0.5))]);
        }
        assert_eq!(strict.finish(&run()).scorers[0].pass_count, 0);
        assert_eq!(lax.finish(&run()).scorers[0].pass_count, 1);
    }
}
