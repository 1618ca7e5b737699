//! The run executor: streams a run's items through its target and scorers on
//! a bounded pool and persists each result as it completes.
//!
//! Lifecycle of one run (see also `docs/runs.md`):
//! 1. claim the run's lease (status `running`), start a heartbeat;
//! 2. read the items that have no result yet, page by page (never all at
//!    once), and start each one when a slot of the run (`maxConcurrency`) and
//!    a slot of the process are free;
//! 3. per item: target (with retries for transient errors and the item
//!    deadline), then every scorer in parallel, then the batched writer, then
//!    `on_item_complete` (awaited: backpressure), then the progress counters;
//! 4. join every started item, then finalize.
//!
//! Cancelling stops new items, cancels the in-flight ones, joins them and
//! finalizes the run as `cancelled`; nothing is written after that. A process
//! shutdown (`drain`, then `abort`) stops without finalizing and releases
//! the lease, so the next start resumes the run where it stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use assay_plugin_host::{CallError, CallFailure, CapturedLogs, PluginItem};
use assay_store::{DatasetItem, NewResult, Run, RunStatus, ScoreRow, Store, StoreError};
use chrono::Utc;
use futures::future::{BoxFuture, join_all};
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::RunOptions;
use crate::error::RunError;
use crate::item::ItemWithScores;
use crate::plugins::{Scorer, Target};
use crate::retry::backoff;
use crate::summary::RunSummary;
use crate::writer::{ResultSink, ResultWriter, WriteAck};

/// Error type a completion callback may return; it is logged, never fatal.
pub type CallbackError = Box<dyn std::error::Error + Send + Sync>;

/// A per-item completion callback: `(item, dataset index)`.
pub type ItemCallback =
    Arc<dyn Fn(ItemWithScores, i64) -> BoxFuture<'static, Result<(), CallbackError>> + Send + Sync>;

/// Wraps an async closure as an [`ItemCallback`].
pub fn on_item_complete<F, Fut>(f: F) -> ItemCallback
where
    F: Fn(ItemWithScores, i64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), CallbackError>> + Send + 'static,
{
    Arc::new(move |item, index| Box::pin(f(item, index)))
}

/// Process-wide settings shared by every run this process executes.
#[derive(Clone)]
pub struct Executor {
    store: Arc<dyn Store>,
    sink: Arc<dyn ResultSink>,
    owner: String,
    lease: Duration,
    item_slots: Arc<Semaphore>,
    page_size: usize,
    max_batch: usize,
}

/// Default cap on items in flight across all runs of one process.
pub const DEFAULT_PROCESS_ITEM_SLOTS: usize = 256;
/// Default lease of a run; renewed every third of it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

impl Executor {
    /// An executor writing to `store`, identified by a fresh owner id, with
    /// the [`DEFAULT_LEASE`].
    pub fn new(store: Arc<dyn Store>) -> Self {
        let sink: Arc<dyn ResultSink> = Arc::new(store.clone());
        Self {
            store,
            sink,
            owner: format!("host-{}", uuid::Uuid::now_v7()),
            lease: DEFAULT_LEASE,
            item_slots: Arc::new(Semaphore::new(DEFAULT_PROCESS_ITEM_SLOTS)),
            page_size: 256,
            max_batch: 64,
        }
    }

    /// Caps the items in flight across every run of this executor.
    pub fn with_process_item_slots(mut self, slots: usize) -> Self {
        self.item_slots = Arc::new(Semaphore::new(slots.max(1)));
        self
    }

    /// Sets the lease length (heartbeats renew it every third of it).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Sets how many items are read from storage per page.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Sets the largest number of results written per transaction.
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Replaces where results are written (tests use a failing sink).
    pub fn with_sink(mut self, sink: Arc<dyn ResultSink>) -> Self {
        self.sink = sink;
        self
    }

    /// This process's lease owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The store this executor writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The lease length.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Executes `plan` to the end (or until cancelled / shut down).
    pub async fn execute(&self, plan: RunPlan, hooks: RunHooks) -> Result<RunSummary, RunError> {
        let RunPlan {
            tenant,
            run,
            target,
            scorers,
            options,
            claimed,
        } = plan;
        let run = if claimed {
            run
        } else {
            self.store
                .claim_run(&tenant, &run.id, &self.owner, self.lease)
                .await?
        };
        let run_id = run.id.clone();
        info!(run_id, total = run.total_items, "run started");
        // A cancel requested while nobody held the run (or between the claim
        // and now) must stop it before any item starts.
        if run.cancel_requested {
            hooks.cancel.cancel();
        }

        let retain = hooks
            .retain_results
            .unwrap_or(hooks.on_item_complete.is_none());
        // `stop`: start no new item. `abort`: cancel the in-flight ones.
        let stop = CancellationToken::new();
        let abort = CancellationToken::new();
        let lease_lost = CancellationToken::new();
        // Apply hooks that already fired synchronously, so that no item
        // starts before the watcher task first runs.
        if hooks.cancel.is_cancelled() || hooks.abort.is_cancelled() {
            stop.cancel();
            abort.cancel();
        } else if hooks.drain.is_cancelled() {
            stop.cancel();
        }
        let watcher = spawn_stop_watcher(&hooks, &stop, &abort, &lease_lost);
        let cancel_recorder = spawn_cancel_recorder(
            self.store.clone(),
            tenant.clone(),
            run_id.clone(),
            hooks.cancel.clone(),
        );
        let heartbeat = spawn_heartbeat(
            self.store.clone(),
            run_id.clone(),
            self.owner.clone(),
            self.lease,
            hooks.cancel.clone(),
            lease_lost.clone(),
        );
        let (writer, writer_task) = ResultWriter::spawn(
            self.sink.clone(),
            run_id.clone(),
            self.owner.clone(),
            self.max_batch,
        );

        let shared = Arc::new(ItemContext {
            target,
            scorers,
            options: options.clone(),
            writer,
            callback: hooks.on_item_complete.clone(),
            retain,
            retained: Mutex::new(Vec::new()),
            abort: abort.clone(),
            lease_lost: lease_lost.clone(),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            persistence_failures: AtomicU64::new(0),
        });

        let feed = self
            .feed_items(&tenant, &run_id, &options, &shared, &stop)
            .await;

        // Join everything before finalizing: no write after finalization.
        let shared = match Arc::try_unwrap(shared) {
            Ok(s) => s,
            Err(_) => unreachable!("all item tasks were joined"),
        };
        let ItemContext {
            writer,
            retained,
            succeeded,
            failed,
            persistence_failures,
            ..
        } = shared;
        drop(writer);
        let _ = writer_task.await;
        heartbeat.abort();
        watcher.abort();
        cancel_recorder.abort();

        let persistence_failures = persistence_failures.into_inner();
        let mut results = retained.into_inner();
        results.sort_by_key(|r| r.index);
        let executed_ok = succeeded.into_inner();
        let executed_failed = failed.into_inner();
        debug!(run_id, executed_ok, executed_failed, "items joined");

        let read_failed = match feed {
            Ok(()) => false,
            Err(e) => {
                // Items could not be read even after retries: leave the run
                // resumable rather than finalizing it with items unexecuted.
                warn!(run_id, error = %e, "reading the run's items failed; releasing the run");
                true
            }
        };

        let interrupted = read_failed
            || lease_lost.is_cancelled()
            || (!hooks.cancel.is_cancelled()
                && (hooks.drain.is_cancelled() || hooks.abort.is_cancelled()));
        if interrupted {
            if !lease_lost.is_cancelled() {
                self.store.release_run(&run_id, &self.owner).await?;
            }
            info!(run_id, "run interrupted; it will resume on the next start");
            let run = self.store.get_run(&tenant, &run_id).await?;
            let mut summary = RunSummary::from_run(run, persistence_failures, results);
            summary.interrupted = true;
            return Ok(summary);
        }

        let status = if hooks.cancel.is_cancelled() {
            RunStatus::Cancelled
        } else {
            let current = self.store.get_run(&tenant, &run_id).await?;
            // Items whose result could not be stored still ran: count them.
            let ok = current.succeeded_count as u64 + persistence_failures.min(executed_ok);
            if ok == 0 && current.total_items > 0 {
                RunStatus::Failed
            } else {
                RunStatus::Completed
            }
        };
        let run = self
            .store
            .finish_run(&run_id, &self.owner, status, None)
            .await?;
        info!(run_id, status = %run.status, succeeded = run.succeeded_count, failed = run.failed_count, "run finished");
        Ok(RunSummary::from_run(run, persistence_failures, results))
    }

    /// Reads pending items page by page and starts each when slots allow.
    /// Returns after every started item has been joined.
    async fn feed_items(
        &self,
        tenant: &str,
        run_id: &str,
        options: &RunOptions,
        shared: &Arc<ItemContext>,
        stop: &CancellationToken,
    ) -> Result<(), RunError> {
        let run_slots = Arc::new(Semaphore::new(options.max_concurrency));
        let mut tasks = JoinSet::new();
        let mut after: Option<i64> = None;
        let outcome = 'pages: loop {
            if stop.is_cancelled() {
                break Ok(());
            }
            let page = match self.read_page(tenant, run_id, after, stop).await {
                Ok(page) => page,
                Err(e) => break Err(e),
            };
            let Some(last) = page.last() else {
                break Ok(());
            };
            after = Some(last.position);
            for item in page {
                let run_permit = tokio::select! {
                    biased;
                    _ = stop.cancelled() => break 'pages Ok(()),
                    p = run_slots.clone().acquire_owned() => p.expect("semaphore open"),
                };
                let process_permit = tokio::select! {
                    biased;
                    _ = stop.cancelled() => break 'pages Ok(()),
                    p = self.item_slots.clone().acquire_owned() => p.expect("semaphore open"),
                };
                let ctx = shared.clone();
                tasks.spawn(async move {
                    ctx.process(item).await;
                    drop((run_permit, process_permit));
                });
                while let Some(joined) = tasks.try_join_next() {
                    log_panic(run_id, joined);
                }
            }
        };
        while let Some(joined) = tasks.join_next().await {
            log_panic(run_id, joined);
        }
        outcome
    }
}

impl Executor {
    /// One page of pending items, retried with backoff on storage errors
    /// (a busy database or a dropped connection must not end the run).
    async fn read_page(
        &self,
        tenant: &str,
        run_id: &str,
        after: Option<i64>,
        stop: &CancellationToken,
    ) -> Result<Vec<DatasetItem>, RunError> {
        let mut attempt = 0u32;
        loop {
            match self
                .store
                .pending_items(tenant, run_id, after, self.page_size as i64)
                .await
            {
                Ok(page) => return Ok(page),
                Err(e) if attempt < STORAGE_RETRIES && !stop.is_cancelled() => {
                    warn!(run_id, error = %e, attempt, "reading items failed; retrying");
                    tokio::time::sleep(backoff(STORAGE_RETRY_DELAY, attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(RunError::Store(e)),
            }
        }
    }
}

/// Retries of a failed storage read or write before giving up on it.
pub(crate) const STORAGE_RETRIES: u32 = 4;
/// Base delay between storage retries (exponential, with jitter).
pub(crate) const STORAGE_RETRY_DELAY: Duration = Duration::from_millis(100);

/// When the caller cancels, records the request in storage too, so that the
/// run ends `cancelled` even if this process dies before finalizing it.
fn spawn_cancel_recorder(
    store: Arc<dyn Store>,
    tenant: String,
    run_id: String,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        cancel.cancelled().await;
        if let Err(e) = store.request_cancel(&tenant, &run_id).await {
            debug!(run_id, error = %e, "recording the cancel request failed");
        }
    })
}

fn log_panic(run_id: &str, joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined {
        warn!(run_id, error = %e, "an item task panicked");
    }
}

/// Everything needed to execute one run that already exists in storage.
pub struct RunPlan {
    /// The run's tenant.
    pub tenant: String,
    /// The run row (status `pending`, or `running` when resuming).
    pub run: Run,
    /// The target, resolved.
    pub target: Arc<dyn Target>,
    /// The scorers, resolved.
    pub scorers: Vec<Arc<dyn Scorer>>,
    /// The run's options.
    pub options: RunOptions,
    /// True when the caller already holds the run's lease.
    pub claimed: bool,
}

/// How a caller follows and steers a run.
#[derive(Clone, Default)]
pub struct RunHooks {
    /// Called once per finished item, in completion order; awaited.
    pub on_item_complete: Option<ItemCallback>,
    /// Keep every result in the summary. Default: `true` without a callback,
    /// `false` with one.
    pub retain_results: Option<bool>,
    /// Cancels the run: no new items, in-flight items cancelled, then the run
    /// is finalized as `cancelled`.
    pub cancel: CancellationToken,
    /// Process shutdown, first stage: start no new items, let in-flight ones
    /// finish; the run is left resumable.
    pub drain: CancellationToken,
    /// Process shutdown, second stage: cancel in-flight items; the run is
    /// left resumable.
    pub abort: CancellationToken,
}

fn spawn_stop_watcher(
    hooks: &RunHooks,
    stop: &CancellationToken,
    abort: &CancellationToken,
    lease_lost: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (cancel, drain, hard, lost) = (
        hooks.cancel.clone(),
        hooks.drain.clone(),
        hooks.abort.clone(),
        lease_lost.clone(),
    );
    let (stop, abort) = (stop.clone(), abort.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = hard.cancelled() => {}
            _ = lost.cancelled() => {}
            _ = drain.cancelled() => {
                stop.cancel();
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = hard.cancelled() => {}
                    _ = lost.cancelled() => {}
                }
            }
        }
        stop.cancel();
        abort.cancel();
    })
}

fn spawn_heartbeat(
    store: Arc<dyn Store>,
    run_id: String,
    owner: String,
    lease: Duration,
    cancel: CancellationToken,
    lease_lost: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = (lease / 3).max(Duration::from_millis(50));
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tick.tick().await;
            match store.renew_lease(&run_id, &owner, lease).await {
                Ok(control) => {
                    if control.cancel_requested && !cancel.is_cancelled() {
                        info!(run_id, "cancel requested");
                        cancel.cancel();
                    }
                }
                Err(StoreError::LeaseLost) => {
                    warn!(run_id, "lease lost to another process; stopping");
                    lease_lost.cancel();
                    return;
                }
                Err(e) => warn!(run_id, error = %e, "lease renewal failed"),
            }
        }
    })
}

/// State shared by the item tasks of one run.
struct ItemContext {
    target: Arc<dyn Target>,
    scorers: Vec<Arc<dyn Scorer>>,
    options: RunOptions,
    writer: ResultWriter,
    callback: Option<ItemCallback>,
    retain: bool,
    retained: Mutex<Vec<ItemWithScores>>,
    abort: CancellationToken,
    lease_lost: CancellationToken,
    succeeded: AtomicU64,
    failed: AtomicU64,
    persistence_failures: AtomicU64,
}

/// What the target phase of one item ended with.
enum TargetPhase {
    Done {
        outcome: Result<assay_plugin_host::TargetOutcome, CallFailure>,
        retry_count: u32,
    },
    Cancelled,
}

impl ItemContext {
    async fn process(&self, item: DatasetItem) {
        let started_at = Utc::now();
        let index = item.position;
        let plugin_item = PluginItem {
            id: item.id.clone(),
            input: item.input.clone(),
            ground_truth: item.expected_output.clone(),
            metadata: item.context.clone(),
        };
        let clock = Instant::now();
        let (outcome, retry_count) = match self.run_target(&plugin_item).await {
            TargetPhase::Done {
                outcome,
                retry_count,
            } => (outcome, retry_count),
            TargetPhase::Cancelled => return,
        };
        let latency = clock.elapsed().as_secs_f64() * 1000.0;

        let (output, trace_id, error, error_kind, logs) = match outcome {
            Ok(out) => (Some(out.output), out.trace_id, None, None, out.logs),
            Err(f) => (
                None,
                None,
                Some(f.error.to_string()),
                Some(f.error.kind().to_string()),
                f.logs,
            ),
        };

        // Scorers grade successful outputs only: scoring a missing output
        // would add meaningless zeros to every mean.
        let scores = match &output {
            Some(out) => match self.run_scorers(&plugin_item, out).await {
                Some(scores) => scores,
                None => return,
            },
            None => Vec::new(),
        };

        let result = NewResult {
            item_id: item.id,
            item_index: index,
            item_version: item.version,
            input: item.input,
            output,
            expected_output: item.expected_output,
            latency,
            error,
            error_kind,
            started_at,
            completed_at: Utc::now(),
            retry_count: retry_count as i64,
            trace_id,
            logs: logs_json(&logs),
            scores,
        };
        self.finish_item(without_nul(result), index).await;
    }

    /// Target call with retries (transient errors only), the item deadline
    /// and cancellation.
    async fn run_target(&self, item: &PluginItem) -> TargetPhase {
        let deadline = self.options.item_timeout.map(|d| Instant::now() + d);
        let mut retry_count = 0u32;
        loop {
            let call = self.target.run(item);
            let outcome = tokio::select! {
                biased;
                _ = self.abort.cancelled() => return TargetPhase::Cancelled,
                r = with_deadline(call, deadline, self.options.item_timeout) => r,
            };
            match outcome {
                Err(f)
                    if f.error.is_transient()
                        && retry_count < self.options.max_retries
                        && deadline.is_none_or(|d| Instant::now() < d) =>
                {
                    let mut wait = backoff(self.options.retry_delay, retry_count);
                    if let Some(d) = deadline {
                        wait = wait.min(d.saturating_duration_since(Instant::now()));
                    }
                    debug!(item = item.id, retry_count, ?wait, error = %f.error, "transient failure; retrying");
                    tokio::select! {
                        biased;
                        _ = self.abort.cancelled() => return TargetPhase::Cancelled,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    retry_count += 1;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return TargetPhase::Done {
                            outcome: Err(item_timeout(self.options.item_timeout)),
                            retry_count,
                        };
                    }
                }
                outcome => {
                    return TargetPhase::Done {
                        outcome,
                        retry_count,
                    };
                }
            }
        }
    }

    /// Every scorer in parallel, each failure isolated. `None` if cancelled.
    async fn run_scorers(&self, item: &PluginItem, output: &Value) -> Option<Vec<ScoreRow>> {
        let calls = self.scorers.iter().map(|scorer| async move {
            let outcome = scorer.score(item, Some(output)).await;
            match outcome {
                Ok(score) => ScoreRow {
                    scorer_id: scorer.id().to_string(),
                    scorer_name: scorer.name().to_string(),
                    score: Some(score.value),
                    reason: score.reason,
                    error: None,
                    metadata: score.metadata,
                },
                Err(f) => ScoreRow {
                    scorer_id: scorer.id().to_string(),
                    scorer_name: scorer.name().to_string(),
                    score: None,
                    reason: None,
                    error: Some(f.error.to_string()),
                    metadata: None,
                },
            }
        });
        tokio::select! {
            biased;
            _ = self.abort.cancelled() => None,
            scores = join_all(calls) => Some(scores),
        }
    }

    /// Persist, count, call back, retain.
    async fn finish_item(&self, result: NewResult, index: i64) {
        if self.lease_lost.is_cancelled() {
            return;
        }
        let failed = result.error.is_some();
        let persistence_error = match self.writer.write(result.clone()).await {
            WriteAck::Written => None,
            WriteAck::LeaseLost => {
                self.lease_lost.cancel();
                return;
            }
            WriteAck::Failed(e) => {
                self.persistence_failures.fetch_add(1, Ordering::Relaxed);
                Some(e)
            }
        };
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.succeeded.fetch_add(1, Ordering::Relaxed);
        }
        let item = ItemWithScores {
            index,
            result,
            persistence_error,
        };
        match (&self.callback, self.retain) {
            (Some(cb), true) => {
                self.retained.lock().await.push(item.clone());
                call_back(cb, item, index).await;
            }
            (Some(cb), false) => call_back(cb, item, index).await,
            (None, true) => self.retained.lock().await.push(item),
            (None, false) => {}
        }
    }
}

async fn call_back(cb: &ItemCallback, item: ItemWithScores, index: i64) {
    let item_id = item.result.item_id.clone();
    if let Err(e) = cb(item, index).await {
        warn!(item_id, index, error = %e, "on_item_complete callback failed (ignored)");
    }
}

async fn with_deadline<F>(
    call: F,
    deadline: Option<Instant>,
    limit: Option<Duration>,
) -> Result<assay_plugin_host::TargetOutcome, CallFailure>
where
    F: std::future::Future<Output = Result<assay_plugin_host::TargetOutcome, CallFailure>>,
{
    match deadline {
        None => call.await,
        Some(d) => match tokio::time::timeout_at(d.into(), call).await {
            Ok(r) => r,
            Err(_) => Err(item_timeout(limit)),
        },
    }
}

fn item_timeout(limit: Option<Duration>) -> CallFailure {
    CallFailure {
        error: CallError::Timeout {
            after: limit.unwrap_or_default(),
        },
        logs: CapturedLogs::default(),
    }
}

/// Replaces U+0000 in everything a plugin produced: PostgreSQL's `text` and
/// `jsonb` reject it, and both backends must store the same result.
fn without_nul(mut r: NewResult) -> NewResult {
    fn text(s: &mut String) {
        if s.contains('\0') {
            *s = s.replace('\0', "\u{FFFD}");
        }
    }
    fn json(v: &mut Value) {
        match v {
            Value::String(s) => text(s),
            Value::Array(a) => a.iter_mut().for_each(json),
            Value::Object(o) => {
                if o.keys().any(|k| k.contains('\0')) {
                    let entries: Vec<(String, Value)> = std::mem::take(o).into_iter().collect();
                    for (mut k, mut val) in entries {
                        text(&mut k);
                        json(&mut val);
                        o.insert(k, val);
                    }
                } else {
                    o.values_mut().for_each(json);
                }
            }
            _ => {}
        }
    }
    for v in [&mut r.output, &mut r.logs].into_iter().flatten() {
        json(v);
    }
    for s in [&mut r.error, &mut r.trace_id].into_iter().flatten() {
        text(s);
    }
    for score in &mut r.scores {
        for s in [&mut score.reason, &mut score.error].into_iter().flatten() {
            text(s);
        }
        if let Some(m) = &mut score.metadata {
            json(m);
        }
    }
    r
}

fn logs_json(logs: &CapturedLogs) -> Option<Value> {
    if logs.stdout.is_empty() && logs.stderr.is_empty() {
        return None;
    }
    Some(serde_json::json!({
        "stdout": logs.stdout,
        "stderr": logs.stderr,
        "truncated": logs.truncated,
    }))
}
