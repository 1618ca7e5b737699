//! Run summaries for people and tools: the run's statistics (computed by
//! [`assay_runner::stats`], shared with `assay runs compare` and the HTTP
//! API's run summary), `--fail-under` gates, and the text table `assay run`
//! prints.

use std::fmt::Write as _;

use assay_runner::RunStats;
use assay_runner::stats::ScorerSummary;
use assay_store::RunStatus;
use serde::Serialize;

use crate::cli::args::MinScore;
use crate::table;

/// Failure groups listed in the text summary.
const GROUPS_SHOWN: usize = 10;

/// The summary of one run: its statistics plus what only the CLI adds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The run's statistics (their fields are the report's top level in
    /// JSON).
    #[serde(flatten)]
    pub stats: RunStats,
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

impl From<RunStats> for Report {
    fn from(stats: RunStats) -> Self {
        Self {
            stats,
            gates: Vec::new(),
            persistence_failures: 0,
        }
    }
}

impl Report {
    /// Applies `--fail-under` minimums; returns true when every one is met.
    /// A minimum without a scorer applies to every scorer of the run.
    pub fn apply_gates(&mut self, mins: &[MinScore]) -> bool {
        let mut gates = Vec::new();
        for m in mins {
            let targets: Vec<&ScorerSummary> = match &m.scorer {
                Some(id) => self
                    .stats
                    .scorers
                    .iter()
                    .filter(|s| &s.scorer_id == id)
                    .collect(),
                None => self.stats.scorers.iter().collect(),
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
        match self.stats.status {
            RunStatus::Completed if self.stats.failed_count > 0 => "completed with errors".into(),
            s => s.to_string(),
        }
    }

    /// The summary as text (what `assay run` prints without `--json`),
    /// terminal-safe: failure messages come from plugins.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Run {}  {}", self.stats.run_id, self.status_label());
        let dataset = match &self.stats.dataset_name {
            Some(name) => format!("{name} ({})", self.stats.dataset_id),
            None => self.stats.dataset_id.clone(),
        };
        let repeats = self.stats.repeats.max(1);
        let items = if repeats > 1 {
            format!(
                "{} items x {repeats} trials",
                self.stats.total_items / repeats
            )
        } else {
            format!("{} items", self.stats.total_items)
        };
        let _ = writeln!(
            out,
            "  dataset   {dataset} v{} · target {} · {items}",
            self.stats.dataset_version, self.stats.target_id
        );
        let mut items = format!(
            "  items     {} succeeded · {} failed · {} skipped",
            self.stats.succeeded_count, self.stats.failed_count, self.stats.skipped_count
        );
        if self.stats.pending_count > 0 {
            let _ = write!(items, " · {} pending", self.stats.pending_count);
        }
        if let Some(d) = self.stats.duration_ms {
            let _ = write!(items, "  in {}", table::millis(d));
            if let Some(rate) = self.stats.items_per_second {
                let _ = write!(items, " ({rate:.1} items/s)");
            }
        }
        let _ = writeln!(out, "{items}");
        if let (Some(p50), Some(p95), Some(max)) = (
            self.stats.latency_ms.p50,
            self.stats.latency_ms.p95,
            self.stats.latency_ms.max,
        ) {
            let _ = writeln!(
                out,
                "  latency   p50 {} · p95 {} · max {}",
                table::millis(p50),
                table::millis(p95),
                table::millis(max)
            );
        }
        if let Some(u) = &self.stats.token_usage {
            let _ = writeln!(
                out,
                "  tokens    {} total · {} prompt · {} completion  ({} items reported usage)",
                u.tokens.total_tokens, u.tokens.prompt_tokens, u.tokens.completion_tokens, u.items
            );
        }
        // The scorers' own calls (an LLM judge), one line per scorer that
        // reported usage, apart from the target's.
        let judged = self
            .stats
            .scorers
            .iter()
            .filter_map(|s| Some((&s.scorer_id, s.token_usage?)));
        for (i, (id, u)) in judged.enumerate() {
            let label = if i == 0 { "judging" } else { "" };
            let _ = writeln!(
                out,
                "  {label:<9} {}: {} total · {} prompt · {} completion  ({} scores reported usage)",
                crate::term::safe_line(id),
                u.tokens.total_tokens,
                u.tokens.prompt_tokens,
                u.tokens.completion_tokens,
                u.scores
            );
        }
        if self.stats.cached_count > 0 {
            let _ = writeln!(
                out,
                "  cached    {} of {} items reused a stored output (target not called; their latency and tokens are the original call's)",
                self.stats.cached_count,
                self.stats.succeeded_count + self.stats.failed_count
            );
        }
        if let Some(e) = &self.stats.error {
            let _ = writeln!(out, "  error     {e}");
        }
        if self.persistence_failures > 0 {
            let _ = writeln!(
                out,
                "  warning   {} results could not be stored",
                self.persistence_failures
            );
        }

        if !self.stats.scorers.is_empty() {
            out.push('\n');
            let pass_header = format!("PASS (>= {})", self.stats.pass_threshold);
            let rows: Vec<Vec<String>> = self
                .stats
                .scorers
                .iter()
                .map(|s| {
                    let mut row = vec![
                        s.scorer_id.clone(),
                        s.mean
                            .map(|m| format!("{m:.3}"))
                            .unwrap_or_else(|| "-".into()),
                    ];
                    if repeats > 1 {
                        row.push(
                            s.standard_error
                                .map(|se| format!("±{se:.3}"))
                                .unwrap_or_else(|| "-".into()),
                        );
                        row.push(match s.ci95 {
                            Some([lo, hi]) => format!("[{lo:.3}, {hi:.3}]"),
                            None => "-".into(),
                        });
                        row.push(s.item_count.to_string());
                    }
                    row.extend([
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
                    ]);
                    row
                })
                .collect();
            let text = if repeats > 1 {
                // The mean is over items (each the mean of its trials),
                // with its standard error and 95% interval over items.
                table::render(
                    &[
                        "SCORER",
                        "MEAN",
                        "SE",
                        "95% CI",
                        "ITEMS",
                        &pass_header,
                        "SCORED",
                        "ERRORS",
                    ],
                    &rows,
                    &[1, 2, 4, 6, 7],
                )
            } else {
                table::render(
                    &["SCORER", "MEAN", &pass_header, "SCORED", "ERRORS"],
                    &rows,
                    &[1, 3, 4],
                )
            };
            for line in text.lines() {
                let _ = writeln!(out, "  {line}");
            }
        }

        if !self.stats.failures.is_empty() {
            let total: u64 = self.stats.failures.iter().map(|g| g.count).sum();
            let _ = writeln!(out, "\n  Failures by error ({total}):");
            for g in self.stats.failures.iter().take(GROUPS_SHOWN) {
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
            if self.stats.failures.len() > GROUPS_SHOWN {
                let _ = writeln!(
                    out,
                    "         … and {} more kinds of error (see `assay runs results {} --failed`)",
                    self.stats.failures.len() - GROUPS_SHOWN,
                    self.stats.run_id
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
        crate::term::safe(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_runner::StatsBuilder;
    use assay_store::{Run, ScoreRow};

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

    /// A completed run of 4 items (3 succeeded, 1 failed).
    fn run() -> Run {
        let now = chrono::Utc::now();
        Run {
            id: "r1".into(),
            dataset_id: "d1".into(),
            dataset_version: 1,
            target_type: assay_store::TargetType::Plugin,
            target_id: "echo".into(),
            scorer_ids: vec!["exact".into()],
            status: RunStatus::Completed,
            total_items: 4,
            repeats: 1,
            succeeded_count: 3,
            failed_count: 1,
            skipped_count: 0,
            config: serde_json::json!({}),
            error: None,
            cancel_requested: false,
            takeovers: 0,
            claim_number: 0,
            exclusive: false,
            parent_run_id: None,
            started_at: Some(now - chrono::Duration::seconds(2)),
            completed_at: Some(now),
            created_at: now,
            updated_at: now,
        }
    }

    /// Scores 1.0, 0.0, a scorer error, and a target timeout.
    fn report() -> Report {
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
        Report::from(b.finish(&run()))
    }

    #[test]
    fn gates_compare_each_scorer_mean_with_its_minimum() {
        let mut report = report();
        assert!(report.apply_gates(&[MinScore {
            scorer: Some("exact".into()),
            min: 0.5
        }]));
        assert!(!report.apply_gates(&[MinScore {
            scorer: None,
            min: 0.6
        }]));
        assert_eq!(report.gates.len(), 1);
        assert_eq!(report.gates[0].mean, Some(0.5));
        let text = report.render_text();
        assert!(text.contains("completed with errors"), "{text}");
        assert!(text.contains("FAILED"), "{text}");
        assert!(text.contains("[timeout]"), "{text}");
    }

    #[test]
    fn token_usage_is_shown_only_when_reported() {
        assert!(!report().render_text().contains("tokens"));
        let mut b = StatsBuilder::new(&["exact".into()], 0.5);
        b.add_usage(assay_store::TokenUsage {
            prompt_tokens: 1200,
            completion_tokens: 34,
            total_tokens: 1234,
        });
        let text = Report::from(b.finish(&run())).render_text();
        assert!(
            text.contains(
                "tokens    1234 total · 1200 prompt · 34 completion  (1 items reported usage)"
            ),
            "{text}"
        );
    }

    #[test]
    fn judge_usage_is_a_line_per_scorer_apart_from_the_targets() {
        assert!(!report().render_text().contains("judging"));
        let mut b = StatsBuilder::new(&["exact".into(), "judge".into()], 0.5);
        b.add_usage(assay_store::TokenUsage {
            prompt_tokens: 10,
            completion_tokens: 2,
            total_tokens: 12,
        });
        for (p, c) in [(300, 40), (200, 5)] {
            b.add_score_usage(
                "judge",
                assay_store::TokenUsage {
                    prompt_tokens: p,
                    completion_tokens: c,
                    total_tokens: p + c,
                },
            );
        }
        let text = Report::from(b.finish(&run())).render_text();
        assert!(
            text.contains(
                "tokens    12 total · 10 prompt · 2 completion  (1 items reported usage)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "judging   judge: 545 total · 500 prompt · 45 completion  (2 scores reported usage)"
            ),
            "{text}"
        );
        assert!(!text.contains("exact:"), "no usage, no line: {text}");
    }

    #[test]
    fn a_scorer_with_no_scores_fails_its_gate() {
        let mut report = Report::from(StatsBuilder::new(&["exact".into()], 0.5).finish(&run()));
        assert!(!report.apply_gates(&[MinScore {
            scorer: None,
            min: 0.0
        }]));
    }

    #[test]
    fn json_keeps_the_statistics_at_the_top_level() {
        let mut report = report();
        report.apply_gates(&[MinScore {
            scorer: None,
            min: 0.9,
        }]);
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["runId"], "r1");
        assert_eq!(v["scorers"][0]["mean"], 0.5);
        assert_eq!(v["gates"][0]["passed"], false);
        assert!(v.get("stats").is_none(), "{v}");
        assert!(v.get("persistenceFailures").is_none(), "{v}");
    }
}
