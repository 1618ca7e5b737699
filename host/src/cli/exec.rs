//! Executing a stored run in this process (for `assay run` and
//! `assay runs resume`), following a run executed elsewhere (`assay runs
//! watch`), and summarizing a run from its stored results.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use assay_runner::{ItemWithScores, RunError, RunHooks, StatsBuilder, on_item_complete, plan_run};
use assay_store::{Run, StoreError, for_each_result_page};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::progress::{Printer, Progress, ProgressMode};
use crate::report::Report;

/// Poll interval when following a run executed elsewhere.
const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// Results read per page when summarizing a stored run.
const RESULTS_PAGE: i64 = 1000;

/// How to execute a run.
pub struct ExecSettings {
    /// Score at or above which an item passes.
    pub pass_threshold: f64,
    /// Where to write one JSON line per finished item.
    pub output: Option<PathBuf>,
    /// How to show progress.
    pub progress: ProgressMode,
    /// When another live process holds the run, follow it there (a run
    /// just created, claimed first by `assay serve`) instead of failing
    /// (a resume).
    pub follow_if_held: bool,
}

/// How an execution ended.
pub struct Outcome {
    /// The summary.
    pub report: Report,
    /// Ctrl-C cancelled the run.
    pub interrupted: bool,
    /// The run stopped without finishing (another process took it over).
    pub detached: bool,
    /// Writing `--output` failed at some point.
    pub output_error: Option<String>,
}

/// One line of `--output`: the run id, then the result as the executor
/// reports it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OutputLine<'a> {
    run_id: &'a str,
    #[serde(flatten)]
    item: &'a ItemWithScores,
}

/// The `--output` file, written line by line as items finish.
struct OutputSink {
    path: PathBuf,
    run_id: String,
    file: Mutex<BufWriter<File>>,
    error: Mutex<Option<String>>,
}

impl OutputSink {
    fn create(path: &Path, run_id: &str) -> Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot create the output file {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            run_id: run_id.to_string(),
            file: Mutex::new(BufWriter::new(file)),
            error: Mutex::new(None),
        })
    }

    fn write(&self, item: &ItemWithScores) {
        let line = OutputLine {
            run_id: &self.run_id,
            item,
        };
        let mut file = self.file.lock().expect("output lock");
        let written = serde_json::to_writer(&mut *file, &line)
            .map_err(std::io::Error::from)
            .and_then(|_| file.write_all(b"\n"))
            // Flush per line: the file always holds every finished item
            // (`tail -f` works, and an interrupted run keeps its lines).
            .and_then(|_| file.flush());
        if let Err(e) = written {
            let mut slot = self.error.lock().expect("output lock");
            if slot.is_none() {
                *slot = Some(format!("cannot write {}: {e}", self.path.display()));
            }
        }
    }

    fn finish(&self) -> Option<String> {
        if let Err(e) = self.file.lock().expect("output lock").flush() {
            return Some(format!("cannot write {}: {e}", self.path.display()));
        }
        self.error.lock().expect("output lock").clone()
    }
}

/// Everything the per-item callback touches.
struct Feed {
    progress: Progress,
    output: Option<OutputSink>,
    builder: Mutex<StatsBuilder>,
}

/// Opens the output file before the run starts, so a bad path fails early.
pub fn check_output_path(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        anyhow::bail!(
            "cannot write the output file {}: directory {} does not exist",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}

/// Executes `run` (pending, or running and resumable) in this process.
/// The first Ctrl-C cancels the run (it ends `cancelled`, results so far
/// kept); a second one exits at once with code 130.
pub async fn execute(app: &App, run: Run, settings: ExecSettings) -> Result<Outcome> {
    let catalog = app.catalog()?;
    let tenant = app.tenant.clone();
    let run_id = run.id.clone();

    let mut builder =
        StatsBuilder::new(&run.scorer_ids, settings.pass_threshold).with_repeats(run.repeats);
    let (done, failed) = if run.started_at.is_some() {
        feed_stored(app, &run_id, &mut builder).await?
    } else {
        (0, 0)
    };
    let plan = plan_run(&catalog, &tenant, run.clone(), false)
        .await
        .map_err(|e| explain_plan_error(e, &run))?;
    let output = match &settings.output {
        Some(path) => Some(OutputSink::create(path, &run_id)?),
        None => None,
    };
    let progress = Progress::start(run.total_items as u64, done, failed, settings.progress);
    let feed = Arc::new(Feed {
        progress,
        output,
        builder: Mutex::new(builder),
    });

    let cancel = CancellationToken::new();
    let interrupted = install_interrupt(cancel.clone(), feed.progress.printer())?;
    let callback_feed = feed.clone();
    let hooks = RunHooks {
        on_item_complete: Some(on_item_complete(move |item: ItemWithScores, _index| {
            let feed = callback_feed.clone();
            async move {
                feed.progress.item_done(item.is_failure());
                if let Some(out) = &feed.output {
                    out.write(&item);
                }
                feed.builder.lock().expect("summary lock").add_item(&item);
                Ok(())
            }
        })),
        retain_results: Some(false),
        cancel: cancel.clone(),
        ..RunHooks::default()
    };

    // The lease is renewed every third of it, which is also how soon a
    // cancel requested elsewhere is noticed.
    // Unshared: the report and the output file are built from this
    // process's items, so no other process may execute part of the run.
    let executor = app.executor().unshared();
    let result = executor.execute(plan, hooks).await;
    feed.progress.finish();
    let summary = match result {
        Ok(summary) => summary,
        Err(RunError::Store(StoreError::Conflict(why))) if settings.follow_if_held => {
            // Another process sharing the database (e.g. `assay serve`)
            // holds the run: follow it there instead.
            tracing::debug!(run_id, why, "run held elsewhere; following it");
            feed.progress.printer().println(&format!(
                "Run {run_id} is being executed by another process sharing this database; following it (Ctrl-C asks it to cancel)."
            ));
            let current = app.store.get_run(&tenant, &run_id).await?;
            let report = follow(
                app,
                current,
                settings.pass_threshold,
                settings.progress,
                Some(cancel),
            )
            .await?;
            let output_error = match &feed.output {
                Some(out) => write_stored(app, &run_id, out)
                    .await
                    .err()
                    .map(|e| e.to_string()),
                None => None,
            };
            return Ok(Outcome {
                report,
                interrupted: interrupted.load(Ordering::SeqCst),
                detached: false,
                output_error,
            });
        }
        Err(RunError::Store(StoreError::Conflict(why))) => {
            return Err(anyhow!(
                "run {run_id} cannot be resumed here: {why}\n  hint: another process may still be executing it (`assay runs watch {run_id}` follows it); if that process died, retry once its lease lapses (--run-lease of that process, 15 s by default)"
            ));
        }
        Err(e) => return Err(anyhow!(e)),
    };

    let output_error = feed.output.as_ref().and_then(OutputSink::finish);
    let feed = Arc::try_unwrap(feed)
        .map_err(|_| anyhow!("internal error: the run's callback outlived the run"))?;
    let builder = feed.builder.into_inner().expect("summary lock");
    let final_run = app.store.get_run(&tenant, &run_id).await?;
    let mut report = Report::from(builder.finish(&final_run));
    report.persistence_failures = summary.persistence_failures;
    Ok(Outcome {
        report,
        interrupted: interrupted.load(Ordering::SeqCst),
        detached: summary.interrupted,
        output_error,
    })
}

/// Listens for Ctrl-C: the first press cancels, the second exits (130).
/// The listener is registered before this returns, so no press is lost.
fn install_interrupt(cancel: CancellationToken, printer: Printer) -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let seen = flag.clone();
    let mut presses = Interrupts::listen()?;
    tokio::spawn(async move {
        if !presses.next().await {
            return;
        }
        seen.store(true, Ordering::SeqCst);
        cancel.cancel();
        printer.println(
            "Cancelling: in-flight items are stopped and the run is stored as cancelled. Press Ctrl-C again to exit at once.",
        );
        if presses.next().await {
            printer.println("Interrupted.");
            std::process::exit(130);
        }
    });
    Ok(flag)
}

/// Ctrl-C presses (SIGINT on Unix).
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn listen() -> Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("cannot listen for Ctrl-C")?,
        })
    }

    /// Waits for the next press; false when no more can come.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            self.signal.recv().await.is_some()
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}

fn explain_plan_error(e: RunError, run: &Run) -> anyhow::Error {
    match e {
        RunError::PluginLoad { id, message } if message.contains("changed since the run") => {
            anyhow!(
                "plugin `{id}` was replaced since run {} was created: {message}\n  hint: register the original component again (`assay plugin add <file.wasm>`), or start a new run",
                run.id
            )
        }
        other => anyhow!(other),
    }
}

/// Writes every stored result of a run to the output file (a run followed
/// rather than executed here).
async fn write_stored(app: &App, run_id: &str, out: &OutputSink) -> Result<()> {
    for_each_result_page(
        app.store.as_ref(),
        &app.tenant,
        run_id,
        RESULTS_PAGE,
        |page| {
            let mut file = out.file.lock().expect("output lock");
            for r in &page {
                serde_json::to_writer(&mut *file, r)?;
                file.write_all(b"\n")?;
            }
            file.flush()?;
            Ok::<_, anyhow::Error>(())
        },
    )
    .await?;
    match out.finish() {
        Some(e) => Err(anyhow!(e)),
        None => Ok(()),
    }
}

/// Feeds every stored result of a run to `builder`; returns (finished,
/// failed) counts.
pub async fn feed_stored(
    app: &App,
    run_id: &str,
    builder: &mut StatsBuilder,
) -> Result<(u64, u64)> {
    let (mut done, mut failed) = (0u64, 0u64);
    for_each_result_page(
        app.store.as_ref(),
        &app.tenant,
        run_id,
        RESULTS_PAGE,
        |page| {
            for r in &page {
                builder.add_result(r);
                done += 1;
                if r.error.is_some() {
                    failed += 1;
                }
            }
            Ok::<_, anyhow::Error>(())
        },
    )
    .await?;
    Ok((done, failed))
}

/// The summary of a run from its stored results.
pub async fn summarize_stored(app: &App, run: &Run, pass_threshold: f64) -> Result<Report> {
    let stats =
        assay_runner::stats::summarize_stored(&app.store, &app.tenant, run, pass_threshold).await?;
    Ok(Report::from(stats))
}

/// A dataset's name, if it can be read.
pub async fn dataset_name(app: &App, dataset_id: &str) -> Option<String> {
    app.store
        .get_dataset(&app.tenant, dataset_id)
        .await
        .ok()
        .map(|d| d.name)
}

/// Follows a run executed by another process until it ends, showing
/// progress; then summarizes it. When `cancel` fires, a cancel is requested
/// through the store (the executing process stops the run).
pub async fn follow(
    app: &App,
    run: Run,
    pass_threshold: f64,
    mode: ProgressMode,
    cancel: Option<CancellationToken>,
) -> Result<Report> {
    let progress = Progress::start(
        run.total_items as u64,
        (run.succeeded_count + run.failed_count) as u64,
        run.failed_count as u64,
        mode,
    );
    let mut current = run;
    let mut cancel_sent = false;
    while !current.status.is_terminal() {
        match &cancel {
            Some(token) if !cancel_sent => {
                tokio::select! {
                    _ = tokio::time::sleep(FOLLOW_POLL) => {}
                    _ = token.cancelled() => {
                        cancel_sent = true;
                        if let Err(e) = app.store.request_cancel(&app.tenant, &current.id).await {
                            tracing::warn!(error = %e, "cancel request failed");
                        }
                    }
                }
            }
            _ => tokio::time::sleep(FOLLOW_POLL).await,
        }
        current = app.store.get_run(&app.tenant, &current.id).await?;
        progress.set_counts(
            (current.succeeded_count + current.failed_count) as u64,
            current.failed_count as u64,
        );
    }
    progress.finish();
    summarize_stored(app, &current, pass_threshold).await
}
