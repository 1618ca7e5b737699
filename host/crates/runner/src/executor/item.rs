//! One item of a run: the target call (retries, item deadline,
//! cancellation), the scorers in parallel, then the result handed to the
//! writer, the counters and the completion callback.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use assay_plugin_host::{CallError, CallFailure, CapturedLogs, PluginItem, TargetOutcome};
use assay_store::{DatasetItem, NewResult, ScoreRow, TargetRecord};
use chrono::Utc;
use futures::future::join_all;
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::ItemCallback;
use crate::adaptive::{AdaptivePermit, CallSignal};
use crate::config::RunOptions;
use crate::item::ItemWithScores;
use crate::metrics::{self, CallKind};
use crate::plugins::{Scorer, Target};
use crate::rescore::TargetSource;
use crate::retry::backoff;
use crate::slots::RunShare;
use crate::writer::{QueuedWrite, ResultWriter, WriteAck};

/// The longest `Retry-After` an item waits for before its next attempt.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// State shared by the item tasks of one run.
pub(super) struct ItemContext {
    /// The run's tenant (a label of its metrics).
    pub(super) tenant: String,
    pub(super) target: TargetSource,
    pub(super) scorers: Vec<Arc<dyn Scorer>>,
    pub(super) options: RunOptions,
    pub(super) writer: ResultWriter,
    pub(super) callback: Option<ItemCallback>,
    /// Items between handing their slot on and the end of their write and
    /// callback: at most the run's `maxConcurrency` or one full write batch,
    /// whichever is more, so that a slow database or `on_item_complete`
    /// consumer still slows the run down (items wait for a place here
    /// holding their slot) instead of piling results up in memory.
    pub(super) completing: Arc<Semaphore>,
    pub(super) retain: bool,
    pub(super) retained: Mutex<Vec<ItemWithScores>>,
    pub(super) abort: CancellationToken,
    pub(super) lease_lost: CancellationToken,
    pub(super) succeeded: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) persistence_failures: AtomicU64,
    /// Results left unwritten because the run stopped during a database
    /// failure (their items run again on resume).
    pub(super) unwritten: AtomicU64,
}

/// What an item's result records of its target phase, whether the target
/// was called or its output read from the run being re-scored.
struct TargetFields {
    output: Option<Value>,
    latency: f64,
    error: Option<String>,
    error_kind: Option<String>,
    retry_count: i64,
    trace_id: Option<String>,
    target_metadata: Option<Value>,
    logs: Option<Value>,
}

impl From<TargetRecord> for TargetFields {
    /// The parent run's target phase, as it was: output or failure,
    /// latency, retries, trace, metadata and logs.
    fn from(r: TargetRecord) -> Self {
        Self {
            output: r.output,
            latency: r.latency,
            error: r.error,
            error_kind: r.error_kind,
            retry_count: r.retry_count,
            trace_id: r.trace_id,
            target_metadata: r.target_metadata,
            logs: r.logs,
        }
    }
}

/// What the target phase of one item ended with. Returned once per item
/// and matched at once: the size difference costs nothing, a box would cost
/// an allocation per item.
#[allow(clippy::large_enum_variant)]
enum TargetPhase {
    Done {
        outcome: Result<TargetOutcome, CallFailure>,
        retry_count: u32,
        place: AdaptivePermit,
    },
    Cancelled,
}

impl ItemContext {
    /// Executes one item to its end (or until the run is aborted), holding
    /// `place` under the run's adaptive in-flight limit (given back and
    /// taken again around each retry of a throttled target call).
    /// `recorded` is the item's stored target output when the run
    /// re-scores another run's outputs (the target is then not called);
    /// `trial` numbers the execution of the item in a run with repeats.
    ///
    /// `computed` is called once the result is in the writer's queue,
    /// before it is written: the caller gives the item's process slot up
    /// there (see [`ResultWriter::enqueue`](crate::writer::ResultWriter::enqueue));
    /// `place` is given up at the same moment. The item then waits for its
    /// write and its callback holding a place among the run's `completing`
    /// items instead. When the run stops before that, `computed` is dropped
    /// uncalled.
    ///
    /// True when the item's result is settled: stored, or refused by the
    /// store for good. False when the run stopped first (the item runs
    /// again when the run resumes).
    pub(super) async fn process(
        &self,
        item: DatasetItem,
        trial: i64,
        recorded: Option<TargetRecord>,
        calls: &RunShare,
        place: AdaptivePermit,
        computed: impl FnOnce(),
    ) -> bool {
        let started_at = Utc::now();
        let index = item.position;
        let plugin_item = PluginItem {
            id: item.id.clone(),
            input: item.input.clone(),
            ground_truth: item.expected_output.clone(),
            metadata: item.context.clone(),
        };
        let (target, signal, place) = match (recorded, &self.target) {
            (Some(record), _) => (TargetFields::from(record), CallSignal::Neutral, place),
            (None, TargetSource::Call(target)) => {
                match self.call_target(target, &plugin_item, calls, place).await {
                    Some(called) => called,
                    None => return false,
                }
            }
            // A miss of the output cache: the call, then its output stored
            // (a failure is never stored, so it is never reused).
            (None, TargetSource::Cached(cache)) => {
                let called = match self
                    .call_target(cache.target(), &plugin_item, calls, place)
                    .await
                {
                    Some(called) => called,
                    None => return false,
                };
                let fields = &called.0;
                if let (Some(output), None) = (&fields.output, &fields.error) {
                    cache
                        .store(
                            &plugin_item,
                            output,
                            fields.target_metadata.as_ref(),
                            fields.trace_id.as_deref(),
                            fields.latency,
                        )
                        .await;
                }
                called
            }
            // The feed starts an item of a re-scoring run only with its
            // recorded output.
            (None, TargetSource::Recorded { .. }) => {
                place.finish(CallSignal::Neutral);
                return false;
            }
        };
        let TargetFields {
            output,
            latency,
            error,
            error_kind,
            retry_count,
            trace_id,
            target_metadata,
            logs,
        } = target;

        // Scorers grade successful outputs only: scoring a missing output
        // would add meaningless zeros to every mean.
        let scores = match &output {
            Some(out) => match self.run_scorers(&plugin_item, out, calls).await {
                Some(scores) => scores,
                None => return false,
            },
            None => Vec::new(),
        };

        let result = NewResult {
            item_id: item.id,
            item_index: index,
            trial,
            item_version: item.version,
            input: item.input,
            output,
            expected_output: item.expected_output,
            latency,
            error,
            error_kind,
            started_at,
            completed_at: Utc::now(),
            retry_count,
            trace_id,
            target_metadata,
            logs,
            scores,
        };
        if self.lease_lost.is_cancelled() {
            place.finish(signal);
            return false;
        }
        let result = without_nul(result);
        let _completing = self
            .completing
            .acquire()
            .await
            .expect("the semaphore is never closed");
        // Aborted while waiting for a place (cancel, or shutdown after the
        // grace period, perhaps during a database outage): queue no new
        // write; on a shutdown the item runs again when the run resumes.
        if self.abort.is_cancelled() {
            return false;
        }
        let queued = self.writer.enqueue(result.clone()).await;
        place.finish(signal);
        computed();
        self.finish_item(queued, result, index).await
    }

    /// The target phase of an item whose target is called: the call, its
    /// latency, and what it says about the upstream's load. `None` when the
    /// run was aborted meanwhile.
    async fn call_target(
        &self,
        target: &Arc<dyn Target>,
        item: &PluginItem,
        calls: &RunShare,
        place: AdaptivePermit,
    ) -> Option<(TargetFields, CallSignal, AdaptivePermit)> {
        let clock = Instant::now();
        let (outcome, retry_count, place) = match self.run_target(target, item, calls, place).await
        {
            TargetPhase::Done {
                outcome,
                retry_count,
                place,
            } => (outcome, retry_count, place),
            TargetPhase::Cancelled => return None,
        };
        let latency = clock.elapsed().as_secs_f64() * 1000.0;
        let signal = match &outcome {
            Ok(out) if out.network.throttled() => CallSignal::Throttled,
            Ok(_) => CallSignal::Ok,
            Err(f) if f.error.is_transient() || f.network.throttled() => CallSignal::Throttled,
            Err(_) => CallSignal::Neutral,
        };
        let fields = match outcome {
            Ok(out) => TargetFields {
                output: Some(out.output),
                latency,
                error: None,
                error_kind: None,
                retry_count: retry_count as i64,
                trace_id: out.trace_id,
                target_metadata: out.metadata,
                logs: logs_json(&out.logs),
            },
            Err(f) => TargetFields {
                output: None,
                latency,
                error: Some(f.error.to_string()),
                error_kind: Some(f.error.kind().to_string()),
                retry_count: retry_count as i64,
                trace_id: None,
                target_metadata: None,
                logs: logs_json(&f.logs),
            },
        };
        Some((fields, signal, place))
    }

    /// Target call with retries (transient errors only), the item deadline
    /// and cancellation.
    async fn run_target(
        &self,
        target: &Arc<dyn Target>,
        item: &PluginItem,
        calls: &RunShare,
        mut place: AdaptivePermit,
    ) -> TargetPhase {
        let deadline = self.options.item_timeout.map(|d| Instant::now() + d);
        let mut retry_count = 0u32;
        loop {
            let call = async {
                let _slot = match target.cpu_bound() {
                    true => Some(calls.acquire().await),
                    false => None,
                };
                metrics::timed_call(
                    &self.tenant,
                    target.id(),
                    CallKind::Target,
                    target.run(item),
                )
                .await
            };
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
                    // A server that said when to come back is believed (up
                    // to a minute; the item deadline still applies).
                    let asked = f.network.retry_after().unwrap_or_default();
                    let mut wait = backoff(self.options.retry_delay, retry_count)
                        .max(asked.min(MAX_RETRY_AFTER));
                    if let Some(d) = deadline {
                        wait = wait.min(d.saturating_duration_since(Instant::now()));
                    }
                    debug!(item = item.id, retry_count, ?wait, error = %f.error, "transient failure; retrying");
                    // Give the place back while waiting: the upstream is
                    // at capacity, and the retry queues under the lowered
                    // limit like any new item.
                    let limit = place.throttled();
                    let requeue = async {
                        tokio::time::sleep(wait).await;
                        limit.acquire().await
                    };
                    place = tokio::select! {
                        biased;
                        _ = self.abort.cancelled() => return TargetPhase::Cancelled,
                        p = requeue => p,
                    };
                    retry_count += 1;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return TargetPhase::Done {
                            outcome: Err(item_timeout(self.options.item_timeout)),
                            retry_count,
                            place,
                        };
                    }
                }
                outcome => {
                    return TargetPhase::Done {
                        outcome,
                        retry_count,
                        place,
                    };
                }
            }
        }
    }

    /// Every scorer in parallel, each failure isolated. `None` if cancelled.
    async fn run_scorers(
        &self,
        item: &PluginItem,
        output: &Value,
        slots: &RunShare,
    ) -> Option<Vec<ScoreRow>> {
        let calls = self.scorers.iter().map(|scorer| async move {
            let outcome = {
                let _slot = match scorer.cpu_bound() {
                    true => Some(slots.acquire().await),
                    false => None,
                };
                metrics::timed_call(
                    &self.tenant,
                    scorer.id(),
                    CallKind::Scorer,
                    scorer.score(item, Some(output)),
                )
                .await
            };
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

    /// Waits for the queued `result` to be stored, then counts, calls back,
    /// retains. True when the result is settled (see
    /// [`ItemContext::process`]).
    async fn finish_item(&self, queued: QueuedWrite, result: NewResult, index: i64) -> bool {
        let failed = result.error.is_some();
        let persistence_error = match queued.written().await {
            WriteAck::Written => None,
            WriteAck::LeaseLost => {
                self.lease_lost.cancel();
                return false;
            }
            WriteAck::GaveUp => {
                self.unwritten.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            WriteAck::Failed(e) => {
                self.persistence_failures.fetch_add(1, Ordering::Relaxed);
                Some(e)
            }
        };
        metrics::item_finished(&self.tenant, failed);
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
        true
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
) -> Result<TargetOutcome, CallFailure>
where
    F: std::future::Future<Output = Result<TargetOutcome, CallFailure>>,
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
        network: Default::default(),
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
    for v in [&mut r.output, &mut r.target_metadata, &mut r.logs]
        .into_iter()
        .flatten()
    {
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
