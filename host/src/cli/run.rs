//! `assay run`: import (or match) the dataset, resolve the plugins, create
//! the run, execute it here with progress, print the summary, and turn
//! quality gates into an exit code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use assay_runner::trigger::clamp_tenant_options;
use assay_runner::{RunOptions, RunRequest, TargetType, create_run};
use assay_store::{PluginKind, PluginRecord};
use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::app::{App, looks_like_path};
use crate::cli::args::{
    MinScore, ScorerConfigArg, build_config, parse_duration, parse_min_score, parse_scorer_config,
};
use crate::cli::concurrency;
use crate::cli::exec::{self, ExecSettings, Outcome};
use crate::cli::print_json;
use crate::dataset_file::{FileFormat, FileSummary};
use crate::exit::{Exit, UsageError};
use crate::import::{import_scanned, scan};
use crate::progress::ProgressMode;

const RUN_AFTER_HELP: &str = "\
Examples:
  # A JSONL file, plugins given as component files
  assay run --dataset examples/capitals.jsonl \\
      --target target/wasm32-wasip2/plugin/echo.wasm \\
      --scorer target/wasm32-wasip2/plugin/exact_match.wasm

  # Registered plugins by id, plugin options, more concurrency, results to a file
  assay plugin add target/wasm32-wasip2/plugin/*.wasm
  assay run -d examples/capitals.csv -t template -s contains -s levenshtein \\
      --target-config 'template=The capital is {{input}}' \\
      --scorer-config contains:ignoreCase=true \\
      --concurrency 16 --retries 2 --item-timeout 30s --output results.jsonl

  # Iterate on scorers without paying for the model twice: the second run
  # reuses the stored answers of the first (see `assay cache`)
  assay run -d evals.jsonl -t openai-chat -s exact-match --cache
  assay run -d evals.jsonl -t openai-chat -s levenshtein --cache

  # CI gate: exit 3 when the exact-match mean is below 0.8; JSON summary on stdout
  assay run -d evals.jsonl -t my-agent -s exact-match --fail-under exact-match=0.8 --json

Datasets: a .jsonl/.csv/.tsv/.json file is imported into the dataset named after
it (same content again reuses it, changed content becomes a new version), so
runs of a file are stored and can be compared with `assay runs compare`.
Otherwise --dataset names a stored dataset by id or name.

Plugin options: --target-config takes a JSON object or key=value (repeatable,
merged in order; values that look like JSON are parsed: 3, true, [1,2]).
--scorer-config takes SCORER:key=value, SCORER:{json} or SCORER={json}, where
SCORER is the scorer's id (or the file given to --scorer).

Ctrl-C cancels the run (it is stored as `cancelled`, finished results kept)
and exits with 130; a second Ctrl-C exits at once.";

/// What `--target-type` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetTypeArg {
    /// A target plugin.
    Plugin,
    /// A scorer plugin run as the target, to calibrate it on items shaped
    /// {input, output, groundTruth}.
    Scorer,
}

/// Arguments of `assay run`.
#[derive(Debug, Args)]
#[command(after_help = RUN_AFTER_HELP)]
pub struct RunArgs {
    /// Dataset: a .jsonl, .csv, .tsv or .json file, or a stored dataset's id or name
    #[arg(short, long, value_name = "FILE|ID|NAME")]
    pub dataset: String,

    /// Dataset version to run [default: the latest, or the file's]
    #[arg(long, value_name = "N")]
    pub dataset_version: Option<i64>,

    /// Name of the dataset a file is imported into [default: the file name without extension]
    #[arg(long, value_name = "NAME")]
    pub dataset_name: Option<String>,

    /// Format of the dataset file [default: from its extension]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<FileFormat>,

    /// Target plugin: a registered id or a .wasm component file
    #[arg(short, long, value_name = "ID|FILE")]
    pub target: String,

    /// What the target is
    #[arg(long, value_enum, default_value = "plugin")]
    pub target_type: TargetTypeArg,

    /// Scorer plugin: a registered id or a .wasm component file (repeatable)
    #[arg(short, long = "scorer", value_name = "ID|FILE")]
    pub scorers: Vec<String>,

    /// Target options: a JSON object or key=value (repeatable, merged in order)
    #[arg(long = "target-config", value_name = "JSON|KEY=VALUE")]
    pub target_config: Vec<String>,

    /// Let the run's target and scorers reach HOST (`api.openai.com`,
    /// `127.0.0.1:8080`) for this run only; nothing is stored as a grant
    /// (repeatable; plain http is allowed for these hosts)
    #[arg(long = "allow-host", value_name = "HOST", value_parser = parse_allow_host)]
    pub allow_host: Vec<assay_plugin_host::HostPattern>,

    /// Scorer options: SCORER:key=value, SCORER:{json} or SCORER={json} (repeatable)
    #[arg(long = "scorer-config", value_name = "SCORER:KEY=VALUE", value_parser = parse_scorer_config)]
    pub scorer_config: Vec<ScorerConfigArg>,

    #[arg(short = 'j', long, value_name = "N", help = concurrency::run_help())]
    pub concurrency: Option<usize>,

    /// Retries of an item whose target failed with a transient error
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub retries: u32,

    /// Run every item N times (trials); the summary gives each scorer's mean
    /// over items with its standard error and 95% interval (at most 100)
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub repeat: u32,

    /// Delay before the first retry; doubles each time, with jitter
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    pub retry_delay: Duration,

    /// Deadline for one item, retries included (e.g. 30s, 500ms)
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub item_timeout: Option<Duration>,

    /// Time limit of one target call [default: 30s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub target_timeout: Option<Duration>,

    /// Time limit of one scorer call [default: 5s]
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub scorer_timeout: Option<Duration>,

    /// Write each result as a JSON line to FILE as items finish
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print the summary as JSON on stdout (progress stays on stderr)
    #[arg(long)]
    pub json: bool,

    /// Exit with code 3 when a scorer's mean is below MIN: SCORER=MIN, or MIN for every scorer (repeatable)
    #[arg(long, value_name = "SCORER=MIN", value_parser = parse_min_score)]
    pub fail_under: Vec<MinScore>,

    /// Exit with code 4 when any item failed
    #[arg(long)]
    pub fail_on_errors: bool,

    /// Score at or above which an item counts as passed
    #[arg(long, default_value_t = assay_runner::stats::DEFAULT_PASS_THRESHOLD, value_name = "SCORE")]
    pub pass_threshold: f64,

    /// No progress display
    #[arg(short, long)]
    pub quiet: bool,

    /// Output cache: reuse the stored output of the same target, config and
    /// item instead of calling the target, and store each new successful
    /// output (for deterministic targets; `assay cache` manages it)
    #[arg(long)]
    pub cache: bool,
}

/// A resolved `--scorer`: what the user typed and the registered plugin.
pub(crate) struct ScorerRef {
    pub(crate) spec: String,
    pub(crate) record: PluginRecord,
}

impl ScorerRef {
    /// True when `name` designates this scorer: its id, the spec as typed,
    /// or the spec's file stem (`exact_match.wasm` → `exact_match`,
    /// `exact-match`).
    fn is_named(&self, name: &str) -> bool {
        if name == self.record.id || name == self.spec {
            return true;
        }
        if looks_like_path(&self.spec)
            && let Some(stem) = Path::new(&self.spec).file_stem().and_then(|s| s.to_str())
        {
            return name == stem || name == stem.replace('_', "-");
        }
        false
    }
}

/// Runs `assay run`.
pub async fn run(app: &App, args: RunArgs) -> Result<Exit> {
    if !(0.0..=1.0).contains(&args.pass_threshold) {
        return Err(UsageError("--pass-threshold must be between 0 and 1".into()).into());
    }
    let target_config = build_config(&args.target_config)
        .map_err(|e| UsageError(format!("--target-config: {e}")))?;
    if let Some(path) = &args.output {
        exec::check_output_path(path)?;
    }

    // Dataset: a file is read and checked first (nothing is written for a
    // bad file); it is imported once the plugins resolve.
    let source = dataset_source(app, &args).await?;

    // Plugins: files are registered, ids looked up.
    let target = app.plugin(&args.target).await?;
    check_kind(&target, args.target_type, &args.target)?;
    let scorers = resolve_scorers(app, &args.scorers).await?;
    let scorer_configs = scorer_configs(&scorers, &args.scorer_config)?;
    let fail_under = resolve_fail_under(&scorers, &args.fail_under)?;

    let concurrency = match args.concurrency {
        Some(n) => n,
        None => {
            let ids = std::iter::once(target.id.as_str())
                .chain(scorers.iter().map(|s| s.record.id.as_str()));
            concurrency::default_for(app, ids, !args.allow_host.is_empty()).await?
        }
    };
    let options = RunOptions {
        max_concurrency: concurrency,
        max_retries: args.retries,
        repeat: args.repeat,
        retry_delay: args.retry_delay,
        item_timeout: args.item_timeout,
        target_timeout: args.target_timeout,
        scorer_timeout: args.scorer_timeout,
        target_config,
        scorer_configs,
        network: one_off_grants(&args.allow_host, &target.id, &scorers),
        network_from_operator: !args.allow_host.is_empty(),
        cache: args.cache,
        ..RunOptions::default()
    };
    options
        .validate()
        .map_err(|e| UsageError(option_flag_message(&e.to_string())))?;

    let (dataset, version) = match source {
        DatasetSource::Stored(dataset, version) => (dataset, version),
        DatasetSource::File(file) => {
            let imported =
                import_scanned(&app.store, &app.tenant, file, args.dataset_name.as_deref()).await?;
            if !args.quiet {
                eprintln!("{}", imported.describe(&args.dataset));
            }
            (imported.dataset, imported.version)
        }
    };

    let catalog = app.catalog()?;
    // The CLI clamps what the tenant's limits do not allow, and says so
    // (the API refuses it instead).
    let mut options = options;
    let limits = app.store.tenant_limits(&app.tenant).await?;
    if args.concurrency.is_none() {
        // A default the user did not ask for fits the tenant's limit
        // without a notice.
        let limit = usize::try_from(limits.items_in_flight.max(1)).unwrap_or(usize::MAX);
        options.max_concurrency = options.max_concurrency.min(limit);
    }
    for notice in clamp_tenant_options(&mut options, &limits) {
        eprintln!(
            "note: {notice} (raise it with `assay tenant limits {} --set KEY=VALUE`)",
            app.tenant
        );
    }
    let concurrency = options.max_concurrency;
    let request = RunRequest {
        dataset_id: dataset.id.clone(),
        version: Some(version),
        target_type: match args.target_type {
            TargetTypeArg::Plugin => TargetType::Plugin,
            TargetTypeArg::Scorer => TargetType::Scorer,
        },
        target_id: target.id.clone(),
        scorer_ids: scorers.iter().map(|s| s.record.id.clone()).collect(),
        options,
        run_id: None,
    };
    let run = create_run(&app.store, &catalog, &app.tenant, request).await?;
    let scorer_list = if scorers.is_empty() {
        "no scorers".to_string()
    } else {
        format!(
            "scored by {}",
            scorers
                .iter()
                .map(|s| s.record.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if !args.quiet {
        let items = if run.repeats > 1 {
            format!(
                "{} items x {} trials",
                run.total_items / run.repeats,
                run.repeats
            )
        } else {
            format!("{} items", run.total_items)
        };
        eprintln!(
            "Run {}: {items} of {} v{} through {}, {scorer_list} (concurrency {})",
            run.id, dataset.name, version, target.id, concurrency
        );
    }

    let settings = ExecSettings {
        pass_threshold: args.pass_threshold,
        output: args.output.clone(),
        follow_if_held: true,
        progress: ProgressMode::detect(args.quiet),
    };
    let mut outcome = exec::execute(app, run, settings).await?;
    outcome.report.stats.dataset_name = Some(dataset.name.clone());
    finish(outcome, &fail_under, args.fail_on_errors, args.json)
}

/// Prints the summary and decides the exit code (shared with `runs resume`).
pub fn finish(
    mut outcome: Outcome,
    fail_under: &[MinScore],
    fail_on_errors: bool,
    json: bool,
) -> Result<Exit> {
    let gates_ok = outcome.report.apply_gates(fail_under);
    let report = &outcome.report;
    if json {
        print_json(report)?;
    } else {
        print!("{}", report.render_text());
    }
    if let Some(e) = &outcome.output_error {
        eprintln!("error: {e}");
        return Ok(Exit::Error);
    }
    if outcome.interrupted {
        eprintln!(
            "Run {} was cancelled by Ctrl-C; the {} finished results are stored (`assay runs show {}`).",
            report.stats.run_id,
            report.stats.succeeded_count + report.stats.failed_count,
            report.stats.run_id
        );
        return Ok(Exit::Interrupted);
    }
    if outcome.detached {
        eprintln!(
            "error: run {} was taken over by another process before it finished; follow it with `assay runs watch {}`",
            report.stats.run_id, report.stats.run_id
        );
        return Ok(Exit::Error);
    }
    match report.stats.status {
        assay_store::RunStatus::Failed => {
            let why = report
                .stats
                .error
                .clone()
                .unwrap_or_else(|| "every item failed".to_string());
            eprintln!("error: run {} failed: {why}", report.stats.run_id);
            return Ok(Exit::Error);
        }
        assay_store::RunStatus::Cancelled => {
            eprintln!(
                "error: run {} was cancelled (by `assay runs cancel` or the API)",
                report.stats.run_id
            );
            return Ok(Exit::Error);
        }
        _ => {}
    }
    if !gates_ok {
        let missed: Vec<String> = outcome
            .report
            .gates
            .iter()
            .filter(|g| !g.passed)
            .map(|g| match g.mean {
                Some(m) => format!("{} mean {m:.3} < {}", g.scorer_id, g.min),
                None => format!("{} has no scores (needs >= {})", g.scorer_id, g.min),
            })
            .collect();
        eprintln!("fail-under: {}", missed.join("; "));
        return Ok(Exit::GateFailed);
    }
    if fail_on_errors && outcome.report.stats.failed_count > 0 {
        eprintln!(
            "fail-on-errors: {} of {} items failed",
            outcome.report.stats.failed_count, outcome.report.stats.total_items
        );
        return Ok(Exit::ItemsFailed);
    }
    Ok(Exit::Success)
}

/// Where the run's items come from.
enum DatasetSource {
    /// A file, read and checked, not imported yet.
    File(FileSummary),
    /// A stored dataset at a version.
    Stored(assay_store::Dataset, i64),
}

async fn dataset_source(app: &App, args: &RunArgs) -> Result<DatasetSource> {
    let path = Path::new(&args.dataset);
    let names_file = FileFormat::from_path(path).is_some() || args.format.is_some();
    if path.is_file() {
        if args.dataset_version.is_some() {
            return Err(UsageError(
                "--dataset-version applies to stored datasets, not to files (a file is always run as it is now)"
                    .into(),
            )
            .into());
        }
        return Ok(DatasetSource::File(scan(path, args.format).await?));
    }
    if names_file && !path.exists() {
        bail!(
            "dataset file {} does not exist\n  hint: give a path to a .jsonl, .csv, .tsv or .json file, or a stored dataset's id or name (`assay dataset list`)",
            args.dataset
        );
    }
    if args.dataset_name.is_some() {
        return Err(
            UsageError("--dataset-name applies only when --dataset is a file".into()).into(),
        );
    }
    let dataset = app.dataset(&args.dataset).await?;
    let version = args.dataset_version.unwrap_or(dataset.version);
    Ok(DatasetSource::Stored(dataset, version))
}

/// Looks up the `--scorer` plugins (files are registered), checking each
/// is a scorer and none is given twice.
pub(crate) async fn resolve_scorers(app: &App, specs: &[String]) -> Result<Vec<ScorerRef>> {
    let mut scorers: Vec<ScorerRef> = Vec::new();
    for spec in specs {
        let record = app.plugin(spec).await?;
        if record.kind != PluginKind::Scorer {
            bail!(
                "--scorer {spec}: plugin `{}` is a {} plugin, not a scorer",
                record.id,
                record.kind
            );
        }
        if scorers.iter().any(|s| s.record.id == record.id) {
            return Err(UsageError(format!("scorer `{}` is given twice", record.id)).into());
        }
        scorers.push(ScorerRef {
            spec: spec.clone(),
            record,
        });
    }
    Ok(scorers)
}

fn check_kind(target: &PluginRecord, kind: TargetTypeArg, spec: &str) -> Result<()> {
    match (kind, target.kind) {
        (TargetTypeArg::Plugin, PluginKind::Target)
        | (TargetTypeArg::Scorer, PluginKind::Scorer) => Ok(()),
        (TargetTypeArg::Plugin, PluginKind::Scorer) => bail!(
            "--target {spec}: plugin `{}` is a scorer, not a target\n  hint: pass it with --scorer, or add --target-type scorer to run the scorer itself on items shaped {{input, output, groundTruth}}",
            target.id
        ),
        (_, other) => bail!(
            "--target {spec}: plugin `{}` is a {other} plugin, which --target-type {} does not accept",
            target.id,
            match kind {
                TargetTypeArg::Plugin => "plugin",
                TargetTypeArg::Scorer => "scorer",
            }
        ),
    }
}

/// Groups `--scorer-config` values by scorer id, merged in order.
pub(crate) fn scorer_configs(
    scorers: &[ScorerRef],
    configs: &[ScorerConfigArg],
) -> Result<BTreeMap<String, Value>> {
    let mut merged: BTreeMap<String, Option<Value>> = BTreeMap::new();
    for c in configs {
        let scorer = find_scorer(scorers, &c.scorer, "--scorer-config")?;
        let slot = merged.entry(scorer.record.id.clone()).or_default();
        c.fragment
            .clone()
            .apply(slot)
            .map_err(|e| UsageError(format!("--scorer-config {}: {e}", c.scorer)))?;
    }
    Ok(merged
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

fn find_scorer<'a>(scorers: &'a [ScorerRef], name: &str, flag: &str) -> Result<&'a ScorerRef> {
    scorers.iter().find(|s| s.is_named(name)).ok_or_else(|| {
        let known: Vec<&str> = scorers.iter().map(|s| s.record.id.as_str()).collect();
        UsageError(format!(
            "{flag} names `{name}`, which is not a scorer of this run (scorers: {})",
            if known.is_empty() {
                "none; add one with --scorer".to_string()
            } else {
                known.join(", ")
            }
        ))
        .into()
    })
}

/// `--fail-under` with scorer names turned into ids.
pub(crate) fn resolve_fail_under(
    scorers: &[ScorerRef],
    mins: &[MinScore],
) -> Result<Vec<MinScore>> {
    if !mins.is_empty() && scorers.is_empty() {
        return Err(UsageError("--fail-under needs at least one --scorer".into()).into());
    }
    mins.iter()
        .map(|m| match &m.scorer {
            None => Ok(m.clone()),
            Some(name) => Ok(MinScore {
                scorer: Some(
                    find_scorer(scorers, name, "--fail-under")?
                        .record
                        .id
                        .clone(),
                ),
                min: m.min,
            }),
        })
        .collect()
}

/// Names the CLI flag in a run-option error (`maxConcurrency` → `--concurrency`).
fn option_flag_message(message: &str) -> String {
    let mut text = message.to_string();
    for (field, flag) in [
        ("`maxConcurrency`", "--concurrency"),
        ("`maxRetries`", "--retries"),
        ("`repeat`", "--repeat"),
        ("`retryDelay`", "--retry-delay"),
        ("`itemTimeout`", "--item-timeout"),
        ("`targetTimeout`", "--target-timeout"),
        ("`scorerTimeout`", "--scorer-timeout"),
    ] {
        text = text.replace(field, flag);
    }
    text
}

fn parse_allow_host(text: &str) -> Result<assay_plugin_host::HostPattern, String> {
    text.parse()
        .map_err(|e: assay_plugin_host::HostPatternError| e.to_string())
}

/// `--allow-host`: the same one-off grant for the target and every scorer
/// (the operator's own run on its own database, so no stored grant is
/// needed or changed).
fn one_off_grants(
    hosts: &[assay_plugin_host::HostPattern],
    target: &str,
    scorers: &[ScorerRef],
) -> std::collections::BTreeMap<String, assay_plugin_host::NetworkGrant> {
    if hosts.is_empty() {
        return Default::default();
    }
    let grant = assay_plugin_host::NetworkGrant {
        hosts: hosts.to_vec(),
        allow_http: true,
        ..Default::default()
    };
    std::iter::once(target)
        .chain(scorers.iter().map(|s| s.record.id.as_str()))
        .map(|id| (id.to_string(), grant.clone()))
        .collect()
}
