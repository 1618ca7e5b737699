//! Runs made from a stored run, executed in this process:
//! `assay runs rescore` (a finished run's stored target outputs graded by
//! other scorers, or new versions of them, without calling the target;
//! `docs/rescoring.md`) and `assay runs rerun` (the same run again).

use std::path::PathBuf;

use anyhow::{Result, bail};
use assay_runner::trigger::clamp_tenant_options;
use assay_runner::{Rerun, RescoreRequest, changed_pins, create_rescore, create_run, rerun_of};
use clap::Args;

use crate::app::App;
use crate::cli::args::{MinScore, ScorerConfigArg, parse_min_score, parse_scorer_config};
use crate::cli::exec::{self, ExecSettings};
use crate::cli::run::{resolve_fail_under, resolve_scorers, scorer_configs};
use crate::exit::{Exit, UsageError};
use crate::progress::ProgressMode;

/// Arguments of `assay runs rescore`.
#[derive(Debug, Args)]
pub struct RescoreArgs {
    /// The finished run whose outputs are graded again (id or unique prefix)
    pub id: String,
    /// Scorer plugin: a registered id or a .wasm component file (repeatable, at least one)
    #[arg(short, long = "scorer", value_name = "ID|FILE", required = true)]
    pub scorers: Vec<String>,
    /// Scorer options: SCORER:key=value, SCORER:{json} or SCORER={json} (repeatable)
    #[arg(long = "scorer-config", value_name = "SCORER:KEY=VALUE", value_parser = parse_scorer_config)]
    pub scorer_config: Vec<ScorerConfigArg>,
    #[arg(short = 'j', long, value_name = "N", help = crate::cli::concurrency::rescore_help())]
    pub concurrency: Option<usize>,
    /// How the run is reported and gated
    #[command(flatten)]
    pub report: ReportArgs,
}

/// Runs `assay runs rescore`.
pub async fn rescore(app: &App, a: RescoreArgs) -> Result<Exit> {
    a.report.check()?;
    let parent = app.run(&a.id).await?;
    if !parent.status.is_terminal() {
        bail!(
            "run {} is {}; only a finished run can be re-scored\n  hint: wait for it (`assay runs watch {}`) or cancel it (`assay runs cancel {}`)",
            parent.id,
            parent.status,
            parent.id,
            parent.id
        );
    }
    let scorers = resolve_scorers(app, &a.scorers).await?;
    let configs = scorer_configs(&scorers, &a.scorer_config)?;
    let fail_under = resolve_fail_under(&scorers, &a.report.fail_under)?;
    let catalog = app.catalog()?;
    let request = RescoreRequest {
        parent_run_id: parent.id.clone(),
        scorer_ids: scorers.iter().map(|s| s.record.id.clone()).collect(),
        scorer_configs: configs,
        max_concurrency: match a.concurrency {
            Some(n) => Some(n),
            None => {
                let ids = scorers.iter().map(|s| s.record.id.as_str());
                crate::cli::concurrency::rescore_default(app, &parent, ids).await?
            }
        },
        run_id: None,
    };
    let run = create_rescore(&app.store, &catalog, &app.tenant, request).await?;
    let dataset_name = exec::dataset_name(app, &run.dataset_id).await;
    if !a.report.quiet {
        eprintln!(
            "Run {} re-scores run {}: {} items of {} v{} (outputs of {}, not called), scored by {}",
            run.id,
            parent.id,
            run.total_items,
            dataset_name.as_deref().unwrap_or(&run.dataset_id),
            run.dataset_version,
            run.target_id,
            run.scorer_ids.join(", ")
        );
    }
    let mut outcome = exec::execute(app, run, a.report.settings()).await?;
    outcome.report.stats.dataset_name = dataset_name;
    let r = &a.report;
    crate::cli::run::finish(outcome, &fail_under, r.fail_on_errors, r.json)
}

/// Arguments of `assay runs rerun`.
#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The run to start again (id or unique prefix)
    pub id: String,
    /// How the run is reported and gated
    #[command(flatten)]
    pub report: ReportArgs,
}

/// The reporting flags `rescore` and `rerun` share with `assay run`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Write each result as a JSON line to FILE as items finish
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with code 3 when a scorer's mean is below MIN (SCORER=MIN or MIN)
    #[arg(long, value_name = "SCORER=MIN", value_parser = parse_min_score)]
    pub fail_under: Vec<MinScore>,
    /// Exit with code 4 when any item failed (a re-scoring run keeps its parent's failures)
    #[arg(long)]
    pub fail_on_errors: bool,
    /// Score at or above which an item counts as passed
    #[arg(long, default_value_t = assay_runner::stats::DEFAULT_PASS_THRESHOLD, value_name = "SCORE")]
    pub pass_threshold: f64,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
    /// No progress display
    #[arg(short, long)]
    pub quiet: bool,
}

impl ReportArgs {
    /// Refuses a pass threshold outside 0..=1 and an output file that
    /// cannot be written, before anything runs.
    fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.pass_threshold) {
            return Err(UsageError("--pass-threshold must be between 0 and 1".into()).into());
        }
        if let Some(path) = &self.output {
            exec::check_output_path(path)?;
        }
        Ok(())
    }

    fn settings(&self) -> ExecSettings {
        ExecSettings {
            pass_threshold: self.pass_threshold,
            output: self.output.clone(),
            follow_if_held: true,
            progress: ProgressMode::detect(self.quiet),
        }
    }
}

/// Runs `assay runs rerun`: the same dataset version, target, scorers and
/// options as the stored run, in a new run executed here. A plugin replaced
/// since is used as it is now, with a warning naming both digests.
pub async fn rerun(app: &App, a: RerunArgs) -> Result<Exit> {
    a.report.check()?;
    let original = app.run(&a.id).await?;
    check_gates_name_scorers_of(&original, &a.report.fail_under)?;
    let catalog = app.catalog()?;
    let run = match rerun_of(&original)? {
        Rerun::Run(mut request) => {
            let limits = app.store.tenant_limits(&app.tenant).await?;
            for notice in clamp_tenant_options(&mut request.options, &limits) {
                eprintln!("note: {notice}");
            }
            create_run(&app.store, &catalog, &app.tenant, request)
                .await
                .map_err(|e| explain_rerun_error(e, &original.id))?
        }
        Rerun::Rescore(request) => {
            create_rescore(&app.store, &catalog, &app.tenant, request).await?
        }
    };
    for (id, before, after) in changed_pins(&original, &run)? {
        eprintln!(
            "warning: plugin `{id}` changed since run {} ({before} then, {after} now); differences may come from it",
            original.id
        );
    }
    let dataset_name = exec::dataset_name(app, &run.dataset_id).await;
    if !a.report.quiet {
        eprintln!(
            "Run {} reruns run {}: {} items of {} v{} through {}, scored by {}",
            run.id,
            original.id,
            run.total_items,
            dataset_name.as_deref().unwrap_or(&run.dataset_id),
            run.dataset_version,
            run.target_id,
            if run.scorer_ids.is_empty() {
                "no scorers".to_string()
            } else {
                run.scorer_ids.join(", ")
            }
        );
    }
    let fail_under = a.report.fail_under.clone();
    let mut outcome = exec::execute(app, run, a.report.settings()).await?;
    outcome.report.stats.dataset_name = dataset_name;
    let r = &a.report;
    crate::cli::run::finish(outcome, &fail_under, r.fail_on_errors, r.json)
}

/// A rerun grades with the original run's scorers: a `--fail-under` gate
/// naming another scorer would never be checked, so it is refused.
fn check_gates_name_scorers_of(run: &assay_store::Run, mins: &[MinScore]) -> Result<()> {
    if !mins.is_empty() && run.scorer_ids.is_empty() {
        return Err(UsageError(format!(
            "--fail-under: run {} has no scorers, so there is no mean to gate",
            run.id
        ))
        .into());
    }
    for name in mins.iter().filter_map(|m| m.scorer.as_deref()) {
        if !run.scorer_ids.iter().any(|id| id == name) {
            return Err(UsageError(format!(
                "--fail-under names scorer `{name}`, which run {} does not use (its scorers: {})",
                run.id,
                run.scorer_ids.join(", ")
            ))
            .into());
        }
    }
    Ok(())
}

/// A network grant the original run had for one run only (`--allow-host`)
/// is not stored; say how to give it again.
fn explain_rerun_error(e: assay_runner::RunError, original: &str) -> anyhow::Error {
    let message = e.to_string();
    if message.contains("no network grant") {
        return anyhow::anyhow!(
            "{message}\n  hint: run {original} reached a host granted for that run only (`assay run --allow-host`); grant it to the plugin (`assay plugin grant <id> --host <host>`) to rerun it"
        );
    }
    e.into()
}
