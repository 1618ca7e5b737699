//! Run summaries: per-scorer means and pass rates, latency percentiles,
//! failures grouped by error, `--fail-under` gates; as a table for people
//! or as JSON for tools.
//!
//! A [`SummaryBuilder`] is fed one finished item at a time (from the
//! executor's callback during `assay run`, or from stored results for
//! `assay runs show`), so memory grows only by one float per item.

use std::collections::HashMap;
use std::fmt::Write as _;

use assay_runner::ItemWithScores;
use assay_store::{Run, RunResult, RunStatus, ScoreRow};
use serde::Serialize;

use crate::cli::args::MinScore;
use crate::table;

/// Example items listed per failure group.
const EXAMPLES_PER_GROUP: usize = 5;
/// Failure groups listed in the text summary.
const GROUPS_SHOWN: usize = 10;

/// The summary of one run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
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
    /// Items in the pinned version.
    pub total_items: i64,
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
    /// The score at or above which an item passes.
    pub pass_threshold: f64,
    /// One entry per scorer, in the run's order.
    pub scorers: Vec<ScorerSummary>,
    /// Failures grouped by identical error, largest group first.
    pub failures: Vec<FailureGroup>,
    /// `--fail-under` checks, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<Gate>,
    /// Results that could not be written to storage.
    #[serde(skip_serializing_if = "is_zero")]
    pub persistence_failures: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Latency percentiles over finished items.
#[derive(Debug, Clone, Default, Serialize)]
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

/// One scorer over one run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScorerSummary {
    /// Scorer id.
    pub scorer_id: String,
    /// Scorer name.
    pub scorer_name: String,
    /// Mean of the scores (items whose target failed are not scored).
    pub mean: Option<f64>,
    /// Share of scored items at or above the pass threshold.
    pub pass_rate: Option<f64>,
    /// Scored items at or above the pass threshold.
    pub pass_count: u64,
    /// Items with a score.
    pub scored_count: u64,
    /// Items where the scorer failed.
    pub error_count: u64,
}

/// Items that failed with the same error.
#[derive(Debug, Clone, Serialize)]
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

/// One `--fail-under` check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// Scorer id.
    pub scorer_id: String,
    /// Lowest acceptable mean.
    pub min: f64,
    /// Actual mean (`None`: nothing was scored, which fails the gate).
    pub mean: Option<f64>,
    /// Whether the mean met the minimum.
    pub passed: bool,
}

#[derive(Debug, Default)]
struct ScorerAcc {
    name: String,
    sum: f64,
    scored: u64,
    passed: u64,
    errors: u64,
}

#[derive(Debug)]
struct FailureAcc {
    kind: Option<String>,
    count: u64,
    first_seen: usize,
    examples: Vec<i64>,
}

/// Accumulates finished items into a [`Report`].
#[derive(Debug)]
pub struct SummaryBuilder {
    pass_threshold: f64,
    order: Vec<String>,
    scorers: HashMap<String, ScorerAcc>,
    latencies: Vec<f32>,
    failures: HashMap<(String, String), FailureAcc>,
}

impl SummaryBuilder {
    /// A builder for a run with these scorers (their order is kept).
    pub fn new(scorer_ids: &[String], pass_threshold: f64) -> Self {
        let mut builder = Self {
            pass_threshold,
            order: Vec::new(),
            scorers: HashMap::new(),
            latencies: Vec::new(),
            failures: HashMap::new(),
        };
        for id in scorer_ids {
            builder.scorer(id, id);
        }
        builder
    }

    fn scorer(&mut self, id: &str, name: &str) -> &mut ScorerAcc {
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
        let threshold = self.pass_threshold;
        for s in scores {
            let acc = self.scorer(&s.scorer_id, &s.scorer_name);
            match s.score {
                Some(v) => {
                    acc.sum += v;
                    acc.scored += 1;
                    if v >= threshold {
                        acc.passed += 1;
                    }
                }
                None => acc.errors += 1,
            }
            if s.score.is_none() {
                let message = generalize(s.error.as_deref().unwrap_or("scorer failed"), item_id);
                self.failure(&s.scorer_id, &message, None, index);
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
        if acc.examples.len() < EXAMPLES_PER_GROUP {
            acc.examples.push(index);
        }
    }

    /// The report for `run` (counts and timing come from the run row).
    pub fn finish(self, run: &Run) -> Report {
        let mut latencies = self.latencies;
        latencies.sort_by(f32::total_cmp);
        let latency_ms = latency_stats(&latencies);
        let scorers = self
            .order
            .iter()
            .map(|id| {
                let acc = &self.scorers[id];
                ScorerSummary {
                    scorer_id: id.clone(),
                    scorer_name: acc.name.clone(),
                    mean: (acc.scored > 0).then(|| acc.sum / acc.scored as f64),
                    pass_rate: (acc.scored > 0).then(|| acc.passed as f64 / acc.scored as f64),
                    pass_count: acc.passed,
                    scored_count: acc.scored,
                    error_count: acc.errors,
                }
            })
            .collect();
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
        Report {
            run_id: run.id.clone(),
            status: run.status,
            dataset_id: run.dataset_id.clone(),
            dataset_name: None,
            dataset_version: run.dataset_version,
            target_id: run.target_id.clone(),
            total_items: run.total_items,
            succeeded_count: run.succeeded_count,
            failed_count: run.failed_count,
            skipped_count: run.skipped_count,
            pending_count,
            error: run.error.clone(),
            duration_ms,
            items_per_second,
            latency_ms,
            pass_threshold: self.pass_threshold,
            scorers,
            failures: groups.into_iter().map(|(_, g)| g).collect(),
            gates: Vec::new(),
            persistence_failures: 0,
        }
    }
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

impl Report {
    /// Applies `--fail-under` minimums; returns true when every one is met.
    /// A minimum without a scorer applies to every scorer of the run.
    pub fn apply_gates(&mut self, mins: &[MinScore]) -> bool {
        let mut gates = Vec::new();
        for m in mins {
            let targets: Vec<&ScorerSummary> = match &m.scorer {
                Some(id) => self.scorers.iter().filter(|s| &s.scorer_id == id).collect(),
                None => self.scorers.iter().collect(),
            };
            for s in targets {
                let passed = s.mean.is_some_and(|mean| mean >= m.min);
                gates.push(Gate {
                    scorer_id: s.scorer_id.clone(),
                    min: m.min,
                    mean: s.mean,
                    passed,
                });
            }
        }
        let ok = gates.iter().all(|g| g.passed);
        self.gates = gates;
        ok
    }

    /// The status as people read it (`completed with errors` when some
    /// items failed).
    pub fn status_label(&self) -> String {
        match self.status {
            RunStatus::Completed if self.failed_count > 0 => "completed with errors".into(),
            s => s.to_string(),
        }
    }

    /// The summary as text (what `assay run` prints without `--json`).
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Run {}  {}", self.run_id, self.status_label());
        let dataset = match &self.dataset_name {
            Some(name) => format!("{name} ({})", self.dataset_id),
            None => self.dataset_id.clone(),
        };
        let _ = writeln!(
            out,
            "  dataset   {dataset} v{} · target {} · {} items",
            self.dataset_version, self.target_id, self.total_items
        );
        let mut items = format!(
            "  items     {} succeeded · {} failed · {} skipped",
            self.succeeded_count, self.failed_count, self.skipped_count
        );
        if self.pending_count > 0 {
            let _ = write!(items, " · {} pending", self.pending_count);
        }
        if let Some(d) = self.duration_ms {
            let _ = write!(items, "  in {}", table::millis(d));
            if let Some(rate) = self.items_per_second {
                let _ = write!(items, " ({rate:.1} items/s)");
            }
        }
        let _ = writeln!(out, "{items}");
        if let (Some(p50), Some(p95), Some(max)) = (
            self.latency_ms.p50,
            self.latency_ms.p95,
            self.latency_ms.max,
        ) {
            let _ = writeln!(
                out,
                "  latency   p50 {} · p95 {} · max {}",
                table::millis(p50),
                table::millis(p95),
                table::millis(max)
            );
        }
        if let Some(e) = &self.error {
            let _ = writeln!(out, "  error     {e}");
        }
        if self.persistence_failures > 0 {
            let _ = writeln!(
                out,
                "  warning   {} results could not be stored",
                self.persistence_failures
            );
        }

        if !self.scorers.is_empty() {
            out.push('\n');
            let pass_header = format!("PASS (>= {})", self.pass_threshold);
            let rows: Vec<Vec<String>> = self
                .scorers
                .iter()
                .map(|s| {
                    vec![
                        s.scorer_id.clone(),
                        s.mean
                            .map(|m| format!("{m:.3}"))
                            .unwrap_or_else(|| "-".into()),
                        match s.pass_rate {
                            Some(r) => format!(
                                "{} ({}/{})",
                                table::percent(r),
                                s.pass_count,
                                s.scored_count
                            ),
                            None => "-".into(),
                        },
                        s.scored_count.to_string(),
                        s.error_count.to_string(),
                    ]
                })
                .collect();
            let text = table::render(
                &["SCORER", "MEAN", &pass_header, "SCORED", "ERRORS"],
                &rows,
                &[1, 3, 4],
            );
            for line in text.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }

        if !self.failures.is_empty() {
            let total: u64 = self.failures.iter().map(|g| g.count).sum();
            let _ = writeln!(out, "\n  Failures by error ({total}):");
            for g in self.failures.iter().take(GROUPS_SHOWN) {
                let examples: Vec<String> =
                    g.item_indexes.iter().map(|i| format!("#{i}")).collect();
                let more = if g.count as usize > g.item_indexes.len() {
                    ", …"
                } else {
                    ""
                };
                let kind = g
                    .kind
                    .as_deref()
                    .map(|k| format!("[{k}] "))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {:>5}× {}: {kind}{}  (items {}{more})",
                    g.count,
                    g.source,
                    table::truncate(&g.message, 120),
                    examples.join(", ")
                );
            }
            if self.failures.len() > GROUPS_SHOWN {
                let _ = writeln!(
                    out,
                    "         … and {} more kinds of error (see `assay runs results {} --failed`)",
                    self.failures.len() - GROUPS_SHOWN,
                    self.run_id
                );
            }
        }

        if !self.gates.is_empty() {
            out.push('\n');
            for g in &self.gates {
                let mean = g
                    .mean
                    .map(|m| format!("{m:.3}"))
                    .unwrap_or_else(|| "none".into());
                let (op, verdict) = if g.passed {
                    (">=", "ok")
                } else {
                    ("<", "FAILED")
                };
                let _ = writeln!(
                    out,
                    "  fail-under  {}: mean {mean} {op} {}  {verdict}",
                    g.scorer_id, g.min
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

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

    fn run() -> Run {
        let now = Utc::now();
        Run {
            id: "r1".into(),
            dataset_id: "d1".into(),
            dataset_version: 1,
            target_type: assay_store::TargetType::Plugin,
            target_id: "echo".into(),
            scorer_ids: vec!["exact".into()],
            status: RunStatus::Completed,
            total_items: 4,
            succeeded_count: 3,
            failed_count: 1,
            skipped_count: 0,
            config: serde_json::json!({}),
            error: None,
            cancel_requested: false,
            started_at: Some(now - chrono::Duration::seconds(2)),
            completed_at: Some(now),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn means_pass_rates_percentiles_and_failure_groups() {
        let mut b = SummaryBuilder::new(&["exact".into()], 0.5);
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
        let mut report = b.finish(&run());
        let s = &report.scorers[0];
        assert_eq!(s.scorer_name, "exact scorer");
        assert_eq!(s.mean, Some(0.5));
        assert_eq!(s.pass_rate, Some(0.5));
        assert_eq!((s.scored_count, s.error_count), (2, 1));
        assert_eq!(report.latency_ms.p50, Some(20.0));
        assert_eq!(report.latency_ms.p95, Some(40.0));
        assert_eq!(report.failures.len(), 2);
        assert_eq!(report.items_per_second.map(f64::round), Some(2.0));
        assert!(report.failures.iter().any(|g| g.source == "target"
            && g.kind.as_deref() == Some("timeout")
            && g.item_indexes == vec![3]));

        assert!(report.apply_gates(&[MinScore {
            scorer: Some("exact".into()),
            min: 0.5
        }]));
        assert!(!report.apply_gates(&[MinScore {
            scorer: None,
            min: 0.6
        }]));
        let text = report.render_text();
        assert!(text.contains("completed with errors"), "{text}");
        assert!(text.contains("FAILED"), "{text}");
    }

    #[test]
    fn errors_naming_their_item_are_one_group() {
        let mut b = SummaryBuilder::new(&[], 0.5);
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
        let report = b.finish(&run());
        assert_eq!(report.failures.len(), 1);
        assert_eq!(
            report.failures[0].message,
            "item `<item>` has no ground truth"
        );
        assert_eq!(report.failures[0].item_indexes, vec![0, 1]);
    }

    #[test]
    fn a_scorer_with_no_scores_has_no_mean_and_fails_its_gate() {
        let b = SummaryBuilder::new(&["exact".into()], 0.5);
        let mut report = b.finish(&run());
        assert_eq!(report.scorers[0].mean, None);
        assert!(!report.apply_gates(&[MinScore {
            scorer: None,
            min: 0.0
        }]));
    }
}
