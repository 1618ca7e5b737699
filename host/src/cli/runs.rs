//! `assay runs list|show|results|compare|cancel|resume|rescore|rerun|watch|delete`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};
use assay_runner::compare::{
    CompareOptions, ComparisonResult, ItemWindow, Threshold, compare_runs,
};
use assay_runner::significance::PairedTest;
use assay_store::{ModelCount, Page, Run, RunResult, RunStatus};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::app::App;
use crate::cli::args::{MinScore, parse_compare_threshold, parse_min_score};
use crate::cli::dataset::compact;
use crate::cli::exec::{self, ExecSettings, summarize_stored};
use crate::cli::print_json;
use crate::exit::{Exit, UsageError};
use crate::progress::ProgressMode;
use crate::report::Report;
use crate::table;

/// Run commands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first
    #[command(after_help = "\
Examples:
  assay runs list
  assay runs list --dataset capitals --limit 5
  assay runs list --status running --json")]
    List(ListArgs),
    /// Show a run: status, counts, per-scorer summary, failures
    #[command(after_help = "\
Examples:
  assay runs show 0193a1b2
  assay runs show 0193a1b2-7c4e-7d00-9a1b-2f3e4d5c6b7a --json

A run id can be shortened to any unique prefix of 6 or more characters.")]
    Show(ShowArgs),
    /// List a run's results (one JSON object per line with --json)
    #[command(after_help = "\
Examples:
  assay runs results 0193a1b2
  assay runs results 0193a1b2 --failed
  assay runs results 0193a1b2 --json > results.jsonl")]
    Results(ResultsArgs),
    /// Compare two runs of a dataset: per-scorer deltas and regressed items
    #[command(after_help = "\
Examples:
  assay runs compare <baseline-run> <candidate-run>
  assay runs compare A B --threshold exact-match=0.02 --fail-on-regression
  assay runs compare A B --threshold latency-score=0.1:lower --json

A scorer regresses when its mean moves the wrong way by more than its
tolerance (default 0); an item regresses when one of its scores got worse or
it failed in the candidate but not in the baseline. Items are matched by id,
so runs of an edited file compare on the items they share.")]
    Compare(CompareArgs),
    /// Ask a running run to stop; it ends `cancelled` with its results so far
    #[command(after_help = "\
Examples:
  assay runs cancel 0193a1b2

The process executing the run (this CLI elsewhere, or `assay serve`) notices
within a few seconds; a pending run is cancelled at once.")]
    Cancel(IdArgs),
    /// Execute the rest of an interrupted run in this process
    #[command(after_help = "\
Examples:
  assay runs resume 0193a1b2
  assay runs resume 0193a1b2 --json --output rest.jsonl

Items that already have a result are not run again. The run's plugins must
still be registered with the digests it pinned.")]
    Resume(ResumeArgs),
    /// Grade a finished run's stored outputs with other scorers (the target is not called)
    #[command(after_help = "\
Examples:
  assay runs rescore 0193a1b2 --scorer levenshtein
  assay runs rescore 0193a1b2 --scorer exact-match --scorer-config exact-match:ignoreCase=true
  assay runs rescore 0193a1b2 --scorer ./my_scorer.wasm --json

The new run is linked to its parent (`parentRunId`), pins the digests of its
scorers, and reads each item's output (or failure) from the parent's results;
items the parent never ran are skipped. A scorer the parent also had keeps
its config unless --scorer-config gives one. It streams, resumes
(`assay runs resume`) and compares (`assay runs compare`) like any run.")]
    Rescore(crate::cli::rescore::RescoreArgs),
    /// Start a run again: same dataset version, target, scorers and options
    #[command(after_help = "\
Examples:
  assay runs rerun 0193a1b2
  assay runs rerun 0193a1b2 --json

The new run pins the plugins as they are registered now; a plugin replaced
since the original run is named with both digests. A re-scoring run is
rerun as a re-scoring of the same parent.")]
    Rerun(crate::cli::rescore::RerunArgs),
    /// Follow a run executed elsewhere (e.g. by `assay serve`) until it ends
    #[command(after_help = "\
Examples:
  assay runs watch 0193a1b2
  assay runs watch 0193a1b2 --json")]
    Watch(WatchArgs),
    /// Delete a finished run with its results
    #[command(after_help = "\
Examples:
  assay runs delete 0193a1b2")]
    Delete(IdArgs),
}

/// `runs list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only runs of this dataset (id or name)
    #[arg(long)]
    pub dataset: Option<String>,
    /// Only runs with this status (pending, running, completed, failed, cancelled)
    #[arg(long)]
    pub status: Option<String>,
    /// Most runs shown
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `runs show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Run id (or a unique prefix)
    pub id: String,
    /// Score at or above which an item counts as passed
    #[arg(long, default_value_t = assay_runner::stats::DEFAULT_PASS_THRESHOLD)]
    pub pass_threshold: f64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `runs results`.
#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// Run id (or a unique prefix)
    pub id: String,
    /// Only items whose target failed or whose scorers failed
    #[arg(long)]
    pub failed: bool,
    /// Most results shown in the table (--json prints all)
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print every result as one JSON object per line
    #[arg(long)]
    pub json: bool,
}

/// `runs compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Baseline run
    pub baseline: String,
    /// Candidate run
    pub candidate: String,
    /// Tolerance for a scorer: SCORER=TOLERANCE, append :lower when lower scores are better (repeatable)
    #[arg(long = "threshold", value_name = "SCORER=TOL", value_parser = parse_compare_threshold)]
    pub thresholds: Vec<(String, Threshold)>,
    /// Score at or above which an item counts as passed
    #[arg(long, default_value_t = assay_runner::stats::DEFAULT_PASS_THRESHOLD)]
    pub pass_threshold: f64,
    /// Most regressed items listed
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Exit with code 3 when anything regressed
    #[arg(long)]
    pub fail_on_regression: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// A command taking one run id.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// Run id (or a unique prefix)
    pub id: String,
}

/// `runs resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Run id (or a unique prefix)
    pub id: String,
    /// Write each new result as a JSON line to FILE
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with code 3 when a scorer's mean is below MIN (SCORER=MIN or MIN)
    #[arg(long, value_name = "SCORER=MIN", value_parser = parse_min_score)]
    pub fail_under: Vec<MinScore>,
    /// Exit with code 4 when any item failed
    #[arg(long)]
    pub fail_on_errors: bool,
    /// Score at or above which an item counts as passed
    #[arg(long, default_value_t = assay_runner::stats::DEFAULT_PASS_THRESHOLD)]
    pub pass_threshold: f64,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
    /// No progress display
    #[arg(short, long)]
    pub quiet: bool,
}

/// `runs watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Run id (or a unique prefix)
    pub id: String,
    /// Score at or above which an item counts as passed
    #[arg(long, default_value_t = assay_runner::stats::DEFAULT_PASS_THRESHOLD)]
    pub pass_threshold: f64,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
    /// No progress display
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs a `runs` command.
pub async fn run(app: &App, cmd: RunsCommand) -> Result<Exit> {
    match cmd {
        RunsCommand::List(a) => list(app, a).await,
        RunsCommand::Show(a) => show(app, a).await,
        RunsCommand::Results(a) => results(app, a).await,
        RunsCommand::Compare(a) => compare(app, a).await,
        RunsCommand::Cancel(a) => cancel(app, a).await,
        RunsCommand::Resume(a) => resume(app, a).await,
        RunsCommand::Watch(a) => watch(app, a).await,
        RunsCommand::Rescore(a) => crate::cli::rescore::rescore(app, a).await,
        RunsCommand::Rerun(a) => crate::cli::rescore::rerun(app, a).await,
        RunsCommand::Delete(a) => {
            let run = app.run(&a.id).await?;
            app.store.delete_run(&app.tenant, &run.id).await?;
            println!("Deleted run {}", run.id);
            Ok(Exit::Success)
        }
    }
}

async fn list(app: &App, a: ListArgs) -> Result<Exit> {
    let status = match &a.status {
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            UsageError(format!(
                "unknown status `{s}` (pending, running, completed, failed, cancelled)"
            ))
        })?),
        None => None,
    };
    let dataset = match &a.dataset {
        Some(d) => Some(app.dataset(d).await?),
        None => None,
    };
    let mut runs: Vec<Run> = Vec::new();
    let mut page = 0;
    loop {
        let p = app
            .store
            .list_runs(
                &app.tenant,
                dataset.as_ref().map(|d| d.id.as_str()),
                Page::new(page, 100),
            )
            .await?;
        runs.extend(
            p.items
                .into_iter()
                .filter(|r| status.is_none_or(|s| r.status == s)),
        );
        if !p.has_more || runs.len() >= a.limit as usize {
            break;
        }
        page += 1;
    }
    runs.truncate(a.limit as usize);
    if a.json {
        print_json(&runs)?;
        return Ok(Exit::Success);
    }
    if runs.is_empty() {
        println!(
            "No runs yet. Start one with `assay run --dataset <file> --target <plugin> --scorer <plugin>`."
        );
        return Ok(Exit::Success);
    }
    let mut names: HashMap<String, String> = HashMap::new();
    for r in &runs {
        if !names.contains_key(&r.dataset_id) {
            let name = exec::dataset_name(app, &r.dataset_id)
                .await
                .unwrap_or_else(|| r.dataset_id.clone());
            names.insert(r.dataset_id.clone(), name);
        }
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.status.to_string(),
                format!("{} v{}", names[&r.dataset_id], r.dataset_version),
                r.target_id.clone(),
                r.scorer_ids.join(","),
                format!("{}/{}", r.succeeded_count + r.failed_count, r.total_items),
                r.failed_count.to_string(),
                r.created_at.format("%Y-%m-%d %H:%M").to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &[
                "ID", "STATUS", "DATASET", "TARGET", "SCORERS", "DONE", "FAILED", "CREATED"
            ],
            &rows,
            &[5, 6]
        )
    );
    Ok(Exit::Success)
}

/// `runs show --json`: the summary plus the stored run row.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ShowOutput<'a> {
    #[serde(flatten)]
    report: &'a Report,
    run: &'a Run,
    /// The models the target's server reported answering, with counts.
    models: &'a [ModelCount],
}

async fn show(app: &App, a: ShowArgs) -> Result<Exit> {
    let run = app.run(&a.id).await?;
    let report = summarize_stored(app, &run, a.pass_threshold).await?;
    let models = app.store.target_models(&app.tenant, &run.id).await?;
    if a.json {
        print_json(&ShowOutput {
            report: &report,
            run: &run,
            models: &models,
        })?;
    } else {
        print!("{}", report.render_text());
        if let Some(options) = run.config.get("options") {
            let get = |k: &str| options.get(k).map(|v| v.to_string());
            println!(
                "\n  options   concurrency {} · retries {} · item timeout {}{}",
                get("maxConcurrency").unwrap_or_else(|| "-".into()),
                get("maxRetries").unwrap_or_else(|| "-".into()),
                get("itemTimeout")
                    .map(|ms| format!("{ms} ms"))
                    .unwrap_or_else(|| "none".into()),
                match options.get("cache") {
                    Some(serde_json::Value::Bool(true)) => " · output cache on",
                    _ => "",
                },
            );
        }
        print!("{}", render_provenance(&run, &models));
        if !run.status.is_terminal() {
            println!(
                "\n  The run is {}; follow it with `assay runs watch {}`.",
                run.status, run.id
            );
        }
    }
    Ok(Exit::Success)
}

/// What exactly produced a run's numbers: dataset version, plugins and
/// their pinned digests, their configs (secret names only: values never
/// reach a config), the models the server reported, the parent run.
fn render_provenance(run: &Run, models: &[ModelCount]) -> String {
    let mut out = String::from("\n  provenance\n");
    let config = &run.config;
    let digest = |d: Option<&serde_json::Value>| {
        d.and_then(|v| v.as_str())
            .map(|s| format!(" {s}"))
            .unwrap_or_default()
    };
    out.push_str(&format!(
        "    dataset   {} v{}\n",
        run.dataset_id, run.dataset_version
    ));
    let target_config = config
        .pointer("/options/targetConfig")
        .map(|c| format!(" config {}", compact(c)))
        .unwrap_or_default();
    out.push_str(&format!(
        "    target    {}{}{target_config}\n",
        run.target_id,
        digest(config.get("targetDigest"))
    ));
    for id in &run.scorer_ids {
        let scorer_config = config
            .pointer(&format!(
                "/options/scorerConfigs/{}",
                id.replace('~', "~0").replace('/', "~1")
            ))
            .map(|c| format!(" config {}", compact(c)))
            .unwrap_or_default();
        out.push_str(&format!(
            "    scorer    {id}{}{scorer_config}\n",
            digest(config.pointer(&format!(
                "/scorerDigests/{}",
                id.replace('~', "~0").replace('/', "~1")
            )))
        ));
    }
    if !models.is_empty() {
        let list: Vec<String> = models
            .iter()
            .map(|m| format!("{} ({} items)", m.model, m.items))
            .collect();
        out.push_str(&format!(
            "    models    {} (as the server reported)\n",
            list.join(", ")
        ));
    }
    if let Some(parent) = &run.parent_run_id {
        out.push_str(&format!(
            "    rescores  run {parent} (its target outputs, reused; the target was not called)\n"
        ));
    }
    out.push_str(&format!("    rerun     assay runs rerun {}\n", run.id));
    out
}

async fn results(app: &App, a: ResultsArgs) -> Result<Exit> {
    let run = app.run(&a.id).await?;
    let keep = |r: &RunResult| {
        !a.failed || r.error.is_some() || r.scores.iter().any(|s| s.score.is_none())
    };
    let mut shown: Vec<RunResult> = Vec::new();
    let mut matching = 0usize;
    let mut page = 0;
    let mut out = std::io::stdout();
    loop {
        let p = app
            .store
            .list_results(&app.tenant, &run.id, Page::new(page, 100))
            .await?;
        for r in p.items.into_iter().filter(|r| keep(r)) {
            matching += 1;
            if a.json {
                serde_json::to_writer(&mut out, &r)?;
                writeln!(out)?;
            } else if shown.len() < a.limit {
                shown.push(r);
            }
        }
        if !p.has_more {
            break;
        }
        page += 1;
    }
    if a.json {
        return Ok(Exit::Success);
    }
    if shown.is_empty() {
        println!(
            "{}",
            if a.failed {
                "No failed items."
            } else {
                "No results yet."
            }
        );
        return Ok(Exit::Success);
    }
    let scorer_ids = &run.scorer_ids;
    let mut header = vec!["#", "STATUS", "LATENCY", "OUTPUT"];
    header.extend(scorer_ids.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|r| {
            let mut row = vec![
                // With repeats: `index.trial`.
                if run.repeats > 1 {
                    format!("{}.{}", r.item_index, r.trial)
                } else {
                    r.item_index.to_string()
                },
                if r.error.is_some() { "failed" } else { "ok" }.to_string(),
                table::millis(r.latency),
                match (&r.output, &r.error) {
                    (_, Some(e)) => table::truncate(e, 48),
                    (Some(o), None) => table::truncate(&compact(o), 48),
                    (None, None) => "-".into(),
                },
            ];
            for id in scorer_ids {
                let cell = match r.scores.iter().find(|s| &s.scorer_id == id) {
                    Some(s) => match s.score {
                        Some(v) => format!("{v:.3}"),
                        None => "error".into(),
                    },
                    None => "-".into(),
                };
                row.push(cell);
            }
            row
        })
        .collect();
    let right: Vec<usize> = (0..scorer_ids.len()).map(|i| i + 4).chain([0, 2]).collect();
    print!("{}", table::render(&header, &rows, &right));
    if matching > shown.len() {
        println!(
            "{} of {matching} results shown (--limit N for more, --json for all)",
            shown.len()
        );
    }
    Ok(Exit::Success)
}

async fn compare(app: &App, a: CompareArgs) -> Result<Exit> {
    let base = app.run(&a.baseline).await?;
    let cand = app.run(&a.candidate).await?;
    if base.dataset_id != cand.dataset_id {
        let (na, nb) = (
            exec::dataset_name(app, &base.dataset_id).await,
            exec::dataset_name(app, &cand.dataset_id).await,
        );
        bail!(
            "runs {} and {} are of different datasets ({} and {}); compare runs of the same dataset\n  hint: a file imported under the same name keeps one dataset across edits; `assay runs list --dataset <name>` lists a dataset's runs",
            base.id,
            cand.id,
            na.unwrap_or(base.dataset_id.clone()),
            nb.unwrap_or(cand.dataset_id.clone())
        );
    }
    // The text lists the first `--limit` regressed items; JSON lists every
    // item (the statistics cover every item either way).
    let items = match a.json {
        true => ItemWindow {
            after_index: None,
            limit: usize::MAX,
            regressed_only: false,
        },
        false => ItemWindow {
            after_index: None,
            limit: a.limit,
            regressed_only: true,
        },
    };
    let options = CompareOptions {
        thresholds: a.thresholds.iter().cloned().collect(),
        pass_threshold: Some(a.pass_threshold),
        items,
    };
    let result = compare_runs(
        &app.store,
        &app.tenant,
        &base.dataset_id,
        &base.id,
        &cand.id,
        &options,
    )
    .await?;
    let regressed_items = result.regressed_items;
    if a.json {
        print_json(&result)?;
    } else {
        print!("{}", render_comparison(&result, a.limit));
    }
    if a.fail_on_regression && (result.has_regression || regressed_items > 0) {
        eprintln!("fail-on-regression: the candidate run regressed");
        return Ok(Exit::GateFailed);
    }
    Ok(Exit::Success)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into())
}

/// A scorer's paired t-test over items as the comparison table shows it:
/// the p-value, and whether the difference is significant at 0.05.
fn significance(test: Option<&PairedTest>) -> String {
    match test {
        None => "-".into(),
        Some(t) if t.significant => format!("p={:.3} significant", t.p_value),
        Some(t) => format!("p={:.3} not significant", t.p_value),
    }
}

fn render_comparison(c: &ComparisonResult, limit: usize) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Baseline  {} ({}, v{})\nCandidate {} ({}, v{})\n",
        c.run_a.id,
        c.run_a.status,
        c.run_a.dataset_version,
        c.run_b.id,
        c.run_b.status,
        c.run_b.dataset_version
    ));
    for w in &c.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    if !c.scorers.is_empty() {
        let rows: Vec<Vec<String>> = c
            .scorers
            .iter()
            .map(|(id, s)| {
                vec![
                    id.clone(),
                    fmt_opt(s.stats_a.avg_score),
                    fmt_opt(s.stats_b.avg_score),
                    s.delta
                        .map(|d| format!("{d:+.3}"))
                        .unwrap_or_else(|| "-".into()),
                    format!(
                        "{} → {}",
                        table::percent(s.stats_a.pass_rate),
                        table::percent(s.stats_b.pass_rate)
                    ),
                    format!("{} → {}", s.stats_a.error_count, s.stats_b.error_count),
                    significance(s.significance.as_ref()),
                    if s.regressed { "REGRESSED" } else { "ok" }.to_string(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table::render(
            &[
                "SCORER",
                "BASELINE",
                "CANDIDATE",
                "DELTA",
                "PASS RATE",
                "ERRORS",
                "PAIRED T-TEST",
                "",
            ],
            &rows,
            &[1, 2, 3],
        ));
    }
    let regressed: Vec<_> = c.items.iter().filter(|i| i.regressed).collect();
    let regressed_count = c.regressed_items as usize;
    if regressed_count == 0 {
        out.push_str("\nNo item regressed.\n");
    } else {
        out.push_str(&format!("\nRegressed items ({regressed_count}):\n"));
        let rows: Vec<Vec<String>> = regressed
            .iter()
            .take(limit)
            .map(|i| {
                let mut changes: Vec<String> = Vec::new();
                for (id, b) in &i.scores_b {
                    let a = i.scores_a.get(id).copied().flatten();
                    if a != *b {
                        changes.push(format!("{id} {} → {}", fmt_opt(a), fmt_opt(*b)));
                    }
                }
                if let (None, Some(e)) = (&i.error_a, &i.error_b) {
                    changes.push(format!("failed: {}", table::truncate(e, 60)));
                }
                vec![
                    i.item_index.to_string(),
                    i.item_id.clone(),
                    changes.join("; "),
                ]
            })
            .collect();
        out.push_str(&table::render(&["#", "ITEM", "CHANGE"], &rows, &[0]));
        if regressed_count > regressed.len().min(limit) {
            out.push_str(&format!(
                "… and {} more (--limit N, or --json for all)\n",
                regressed_count - regressed.len().min(limit)
            ));
        }
    }
    let verdict = if c.has_regression || regressed_count > 0 {
        "Verdict: REGRESSION"
    } else {
        "Verdict: no regression"
    };
    out.push_str(&format!("\n{verdict}\n"));
    out
}

async fn cancel(app: &App, a: IdArgs) -> Result<Exit> {
    let run = app.run(&a.id).await?;
    if run.status.is_terminal() {
        bail!(
            "run {} is already {}; nothing to cancel",
            run.id,
            run.status
        );
    }
    let run = app.store.request_cancel(&app.tenant, &run.id).await?;
    if run.status == RunStatus::Cancelled {
        println!("Run {} cancelled.", run.id);
    } else {
        println!(
            "Cancel requested for run {}; the process executing it stops within a few seconds (`assay runs watch {}`).",
            run.id, run.id
        );
    }
    Ok(Exit::Success)
}

async fn resume(app: &App, a: ResumeArgs) -> Result<Exit> {
    let run = app.run(&a.id).await?;
    if run.status.is_terminal() {
        bail!(
            "run {} is {}; only pending or running (interrupted) runs can be resumed\n  hint: start a new run with `assay run`",
            run.id,
            run.status
        );
    }
    if let Some(path) = &a.output {
        exec::check_output_path(path)?;
    }
    if !a.quiet {
        eprintln!(
            "Resuming run {}: {} of {} items done",
            run.id,
            run.succeeded_count + run.failed_count,
            run.total_items
        );
    }
    let settings = ExecSettings {
        pass_threshold: a.pass_threshold,
        output: a.output.clone(),
        follow_if_held: false,
        progress: ProgressMode::detect(a.quiet),
    };
    let dataset_name = exec::dataset_name(app, &run.dataset_id).await;
    let mut outcome = exec::execute(app, run, settings).await?;
    outcome.report.stats.dataset_name = dataset_name;
    crate::cli::run::finish(outcome, &a.fail_under, a.fail_on_errors, a.json)
}

async fn watch(app: &App, a: WatchArgs) -> Result<Exit> {
    let run = app.run(&a.id).await?;
    let report = exec::follow(
        app,
        run,
        a.pass_threshold,
        ProgressMode::detect(a.quiet),
        None,
    )
    .await?;
    if a.json {
        print_json(&report)?;
    } else {
        print!("{}", report.render_text());
    }
    Ok(match report.stats.status {
        RunStatus::Completed => Exit::Success,
        _ => Exit::Error,
    })
}
