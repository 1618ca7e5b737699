//! `assay plugin test FILE.wasm --dataset FILE.jsonl`: runs a component over
//! the first items of a dataset file and prints each output or score with
//! what the plugin printed, for quick iteration without a stored run.
//!
//! Nothing is registered or stored. A scorer scores the item's input as the
//! output (what the `echo` target would give); a target's output is printed
//! as JSON. Each call runs in a fresh sandbox with the limits of a run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use assay_plugin_host::{CallFailure, CapturedLogs, Limits, PluginItem, PluginKind};
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use crate::app::{App, BUILD_PLUGINS_HINT};
use crate::cli::args::build_config;
use crate::cli::print_json;
use crate::dataset_file;
use crate::exit::Exit;

/// `plugin test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The component file (.wasm)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Dataset file (.jsonl, .csv, .tsv or .json) whose first items to use
    #[arg(long, short = 'd', value_name = "FILE")]
    pub dataset: PathBuf,
    /// How many items, from the start of the file
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub limit: usize,
    /// The plugin's config: a JSON document or key=value (repeatable)
    #[arg(long, short = 'c', value_name = "JSON|KEY=VALUE")]
    pub config: Vec<String>,
    /// Print one JSON object per item instead of text
    #[arg(long)]
    pub json: bool,
}

/// What one call gave, for `--json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemOutcome {
    /// 1-based position of the item in the file.
    item: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorOutcome>,
    logs: CapturedLogs,
    micros: u128,
}

#[derive(Debug, Serialize)]
struct ErrorOutcome {
    kind: &'static str,
    message: String,
}

impl ItemOutcome {
    fn new(item: usize, took: Duration, logs: CapturedLogs) -> Self {
        Self {
            item,
            score: None,
            reason: None,
            metadata: None,
            output: None,
            trace_id: None,
            error: None,
            logs,
            micros: took.as_micros(),
        }
    }

    fn failed(item: usize, took: Duration, failure: CallFailure) -> Self {
        let mut o = Self::new(item, took, failure.logs);
        o.error = Some(ErrorOutcome {
            kind: failure.error.kind(),
            message: failure.error.to_string(),
        });
        o
    }
}

/// Runs `plugin test`.
pub async fn run(app: &App, a: TestArgs) -> Result<Exit> {
    if !a.file.exists() {
        return Err(anyhow!(
            "plugin file {} does not exist\n  hint: {BUILD_PLUGINS_HINT}",
            a.file.display()
        ));
    }
    let config = build_config(&a.config).map_err(|e| anyhow!("--config: {e}"))?;
    let dataset = dataset_file::read_file(&a.dataset, None)?;
    let host = app.plugin_host()?;
    let path = a.file.clone();
    let plugin = tokio::task::spawn_blocking(move || host.load_file(&path))
        .await?
        .map_err(|e| anyhow!("{} is not a usable assay plugin: {e}", a.file.display()))?;
    let limits = match plugin.kind() {
        PluginKind::Scorer => Limits::scorer_default(),
        PluginKind::Target => Limits::default(),
    };
    let count = a.limit.min(dataset.items.len());
    if !a.json {
        println!(
            "{} `{}` from {}, contract {}: {count} of {} items, each in a fresh sandbox",
            plugin.kind(),
            plugin.info().id,
            a.file.display(),
            plugin.contract_version(),
            dataset.items.len()
        );
    }
    let mut outcomes = Vec::new();
    for (index, item) in dataset.items.iter().take(count).enumerate() {
        let n = index + 1;
        let plugin_item = PluginItem {
            id: n.to_string(),
            input: item.input.clone(),
            ground_truth: item.expected_output.clone(),
            metadata: item.context.clone(),
        };
        let started = Instant::now();
        let outcome = match plugin.kind() {
            PluginKind::Scorer => {
                // The output scored is the item's input, as the echo target gives.
                match plugin
                    .score(&plugin_item, Some(&item.input), config.as_ref(), &limits)
                    .await
                {
                    Ok(s) => {
                        let mut o = ItemOutcome::new(n, started.elapsed(), s.logs);
                        o.score = Some(s.value);
                        o.reason = s.reason;
                        o.metadata = s.metadata;
                        o
                    }
                    Err(f) => ItemOutcome::failed(n, started.elapsed(), f),
                }
            }
            PluginKind::Target => {
                match plugin
                    .run_target(&plugin_item, config.as_ref(), &limits)
                    .await
                {
                    Ok(t) => {
                        let mut o = ItemOutcome::new(n, started.elapsed(), t.logs);
                        o.output = Some(t.output);
                        o.trace_id = t.trace_id;
                        o.metadata = t.metadata;
                        o
                    }
                    Err(f) => ItemOutcome::failed(n, started.elapsed(), f),
                }
            }
        };
        if !a.json {
            print_outcome(&outcome);
        }
        outcomes.push(outcome);
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if a.json {
        print_json(&outcomes)?;
    } else {
        let scores: Vec<f64> = outcomes.iter().filter_map(|o| o.score).collect();
        let mean = if scores.is_empty() {
            String::new()
        } else {
            format!(
                " (mean score {:.3})",
                scores.iter().sum::<f64>() / scores.len() as f64
            )
        };
        println!("{} ok{mean}, {failed} failed", outcomes.len() - failed);
    }
    Ok(if failed == 0 {
        Exit::Success
    } else {
        Exit::Error
    })
}

/// `println!` through [`crate::term::safe`]: outputs, reasons and logs come
/// from the plugin under test.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", crate::term::safe(&format!($($arg)*)))
    };
}

fn print_outcome(o: &ItemOutcome) {
    let took = format!("{:.1} ms", o.micros as f64 / 1000.0);
    match (&o.error, o.score, &o.output) {
        (Some(e), _, _) => say!(
            "item {}: error ({}): {}  [{took}]",
            o.item,
            e.kind,
            e.message
        ),
        (None, Some(score), _) => say!(
            "item {}: score {score:.3}{}  [{took}]",
            o.item,
            o.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        (None, None, Some(output)) => say!(
            "item {}: output {output}{}  [{took}]",
            o.item,
            o.trace_id
                .as_deref()
                .map(|t| format!(" trace {t}"))
                .unwrap_or_default()
                + &o.metadata
                    .as_ref()
                    .map(|m| format!(" metadata {m}"))
                    .unwrap_or_default()
        ),
        (None, None, None) => say!("item {}: no result  [{took}]", o.item),
    }
    if let Some(m) = &o.metadata {
        say!("  metadata: {m}");
    }
    for (name, text) in [("stdout", &o.logs.stdout), ("stderr", &o.logs.stderr)] {
        for line in text.lines() {
            say!("  {name}| {line}");
        }
    }
    if o.logs.truncated {
        say!("  (logs cut at the limit)");
    }
}
