//! The batching result writer.
//!
//! Item tasks hand their result to one writer task per run and wait for the
//! acknowledgement. The writer takes everything queued (up to a batch limit)
//! and writes it in one transaction: under load many items share a commit.
//! Where a commit is costly (PostgreSQL), while fewer results are queued than
//! the run has in flight, it first waits a little for the others, at most as
//! long as a write takes ([`group_commit`]); a lone item of a slow run is
//! written at once. If a
//! batch fails, its items are retried one by one so that one bad result
//! cannot fail its neighbours.
//!
//! A database error (busy, locked, connection lost, server down) is retried
//! for as long as it lasts, not a fixed number of times: the results were
//! computed already, and an outage longer than a few retries must not turn
//! them into items the run skips forever. The retries end when the write
//! passes, when the store says another claim holds the run (`LeaseLost`),
//! or when the run stops (`give_up`: lease lapsed or lost, shutdown,
//! cancel); the run is then left resumable and its unwritten items run
//! again on the next claim.

use std::sync::Arc;
use std::time::Duration;

use assay_store::{Claim, NewResult, Store, StoreError, WriteOutcome};
use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::executor::STORAGE_RETRY_DELAY;
use crate::retry::backoff;
use crate::slots::RunShare;

mod group_commit;

use group_commit::GroupCommit;

/// The longest wait between two attempts of a write during an outage.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(2);

/// Where results go. The store is the normal sink; tests substitute one that
/// fails on purpose.
#[async_trait]
pub trait ResultSink: Send + Sync {
    /// Writes a batch in one transaction, fenced by `claim`.
    async fn write(
        &self,
        run_id: &str,
        claim: &Claim,
        batch: Vec<NewResult>,
    ) -> Result<WriteOutcome, StoreError>;

    /// Whether a commit costs enough on its own that the writer should wait
    /// a little for more results to share it ([`group_commit`]).
    fn group_commit(&self) -> bool {
        false
    }
}

#[async_trait]
impl ResultSink for Arc<dyn Store> {
    async fn write(
        &self,
        run_id: &str,
        claim: &Claim,
        batch: Vec<NewResult>,
    ) -> Result<WriteOutcome, StoreError> {
        self.write_results(run_id, claim, batch).await
    }

    /// On PostgreSQL, yes: each commit plans the write statement, writes a
    /// commit record and (with `fsync` on) waits for a WAL flush. On SQLite
    /// (WAL, `synchronous=NORMAL`) a commit costs little, and the process's
    /// one write turn is better spent on short transactions: the longer
    /// batches delayed another tenant's run behind a busy one (fair-share
    /// bench).
    fn group_commit(&self) -> bool {
        self.backend() == "postgres"
    }
}

/// How writing one result ended.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteAck {
    /// Stored (or already stored by an earlier attempt: idempotent).
    Written,
    /// Another claim holds the run now; nothing was written.
    LeaseLost,
    /// The run stopped (lease lapsed or lost, shutdown, cancel) while the
    /// database was failing; nothing was written, and the run is left
    /// resumable so that the item runs again.
    GaveUp,
    /// The store refused this result (not a database failure: retrying
    /// would not help).
    Failed(String),
}

/// How a write with retries ended without storing its batch.
enum Unwritten {
    /// The store refused the batch (or said the claim is gone).
    Refused(StoreError),
    /// `give_up` fired while the database was failing.
    GaveUp,
}

/// A result on its way to the writer: the acknowledgement goes back
/// through `ack`; `queued_at` bounds how long it waits for others to share
/// its commit.
struct Job {
    result: NewResult,
    ack: oneshot::Sender<WriteAck>,
    queued_at: tokio::time::Instant,
}

/// Handle to a run's writer task.
#[derive(Clone)]
pub struct ResultWriter {
    tx: mpsc::Sender<Job>,
}

impl ResultWriter {
    /// Starts the writer task for `run_id`. It ends when every handle is
    /// dropped and the queue is drained; await the returned handle to join it.
    ///
    /// Each batch is written holding one of `turns` (the process's write
    /// slots, shared fairly between tenants); results queue meanwhile and
    /// go into the next batch. Database errors are retried until `give_up`
    /// fires.
    pub fn spawn(
        sink: Arc<dyn ResultSink>,
        run_id: String,
        claim: Claim,
        max_batch: usize,
        turns: RunShare,
        give_up: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Job>(max_batch.max(1) * 2);
        let target = Target {
            sink,
            run_id,
            claim,
            give_up,
        };
        let handle = tokio::spawn(tracing::Instrument::in_current_span(write_loop(
            target,
            max_batch.max(1),
            rx,
            turns,
        )));
        (Self { tx }, handle)
    }

    /// Queues `result` and waits until it is stored (or failed).
    pub async fn write(&self, result: NewResult) -> WriteAck {
        self.enqueue(result).await.written().await
    }

    /// Hands `result` to the writer, waiting only for room in its queue;
    /// [`QueuedWrite::written`] then waits for the write itself.
    ///
    /// An item hands its result over, then gives its slots up, then waits
    /// for the write: the run's next item computes while this result waits
    /// for its turn at the database (on a busy SQLite database, one other
    /// batch and its own commit, a few milliseconds per round of a small
    /// run). What bounds the results waiting is the executor's, not the
    /// queue's: an item gives its slot up only once it has a place among
    /// the run's items completing (`maxConcurrency` or 64, whichever is
    /// more).
    pub async fn enqueue(&self, result: NewResult) -> QueuedWrite {
        let (ack_tx, ack_rx) = oneshot::channel();
        let job = Job {
            result,
            ack: ack_tx,
            queued_at: tokio::time::Instant::now(),
        };
        QueuedWrite {
            ack: self.tx.send(job).await.ok().map(|()| ack_rx),
        }
    }
}

/// A result in the writer's queue (see [`ResultWriter::enqueue`]).
#[must_use = "a queued result is stored or failed: wait for the answer"]
pub struct QueuedWrite {
    /// `None`: the writer had stopped, the result was not queued.
    ack: Option<oneshot::Receiver<WriteAck>>,
}

impl QueuedWrite {
    /// Waits until the result is stored (or failed).
    pub async fn written(self) -> WriteAck {
        let stopped = || WriteAck::Failed("result writer stopped".into());
        match self.ack {
            Some(ack) => ack.await.unwrap_or_else(|_| stopped()),
            None => stopped(),
        }
    }
}

/// Where a run's writer writes, and when it stops retrying.
struct Target {
    sink: Arc<dyn ResultSink>,
    run_id: String,
    claim: Claim,
    give_up: CancellationToken,
}

impl Target {
    /// Writes `batch`, retrying with backoff (at most [`MAX_RETRY_WAIT`]
    /// apart) for as long as the store reports a database error (busy,
    /// locked, connection lost, server down) and `give_up` has not fired:
    /// such errors pass, and giving up on them would lose results that were
    /// already computed. An attempt in flight when `give_up` fires is
    /// dropped (its transaction rolls back).
    async fn write_with_retries(&self, batch: &[NewResult]) -> Result<WriteOutcome, Unwritten> {
        let run_id = self.run_id.as_str();
        let mut attempt = 0u32;
        loop {
            let written = tokio::select! {
                biased;
                _ = self.give_up.cancelled(), if attempt > 0 => return Err(Unwritten::GaveUp),
                w = self.sink.write(run_id, &self.claim, batch.to_vec()) => w,
            };
            match written {
                Ok(outcome) => return Ok(outcome),
                Err(StoreError::Database(e)) => {
                    warn!(run_id, error = %e, attempt, "writing results failed; retrying");
                    let wait = backoff(STORAGE_RETRY_DELAY, attempt).min(MAX_RETRY_WAIT);
                    tokio::select! {
                        _ = self.give_up.cancelled() => return Err(Unwritten::GaveUp),
                        _ = tokio::time::sleep(wait) => {}
                    }
                    attempt = attempt.saturating_add(1);
                }
                Err(e) => return Err(Unwritten::Refused(e)),
            }
        }
    }
}

/// The most results one batch takes while another tenant has runs on the
/// same write turns: a result of that tenant waits for the batch in
/// progress, so a busy tenant writes in smaller batches while someone else
/// is there (a few more commits for it, a shorter wait for the other).
const SHARED_TURNS_BATCH: usize = 8;

/// How many queued results the next batch may take: all of `max_batch`
/// when the writer's tenant is alone on the write turns, at most
/// [`SHARED_TURNS_BATCH`] while another tenant has runs on them.
fn batch_limit(max_batch: usize, turns: &RunShare) -> usize {
    if turns.other_tenants_present() {
        max_batch.min(SHARED_TURNS_BATCH)
    } else {
        max_batch
    }
}

/// The acknowledgement for a result whose write ended with `unwritten`.
fn ack_of(unwritten: &Unwritten) -> WriteAck {
    match unwritten {
        Unwritten::Refused(StoreError::LeaseLost) => WriteAck::LeaseLost,
        Unwritten::Refused(e) => WriteAck::Failed(e.to_string()),
        Unwritten::GaveUp => WriteAck::GaveUp,
    }
}

async fn write_loop(
    target: Target,
    max_batch: usize,
    mut rx: mpsc::Receiver<Job>,
    turns: RunShare,
) {
    let run_id = target.run_id.as_str();
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    let mut group = GroupCommit::default();
    let group_commit = target.sink.group_commit();
    loop {
        let limit = batch_limit(max_batch, &turns);
        // Results left over from the last batch go first.
        if jobs.is_empty() && rx.recv_many(&mut jobs, limit).await == 0 {
            break;
        }
        // Wait for the results still on their way, bounded (see
        // `group_commit`), where commits are costly; not while another
        // tenant shares the write turns, where short batches are the point
        // (`SHARED_TURNS_BATCH`).
        if group_commit
            && let Some(wait) = group.wait(jobs.len(), jobs[0].queued_at, limit)
            && !turns.other_tenants_present()
        {
            group_commit::gather(&mut rx, &mut jobs, wait).await;
        }
        let _turn = turns.acquire().await;
        // Another tenant may have come while this writer waited.
        let limit = batch_limit(max_batch, &turns);
        // Results that arrived while waiting for the turn join this batch.
        while jobs.len() < limit {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let rest = jobs.split_off(jobs.len().min(limit));
        let (results, acks): (Vec<_>, Vec<_>) = std::mem::replace(&mut jobs, rest)
            .into_iter()
            .map(|job| (job.result, job.ack))
            .unzip();
        // The runtime's clock (a test with paused time sees its writes take
        // the time they simulate).
        let started = tokio::time::Instant::now();
        let written = target.write_with_retries(&results).await;
        let took = started.elapsed();
        crate::metrics::result_batch_written(results.len(), took, written.is_ok());
        // Every result held right after the write: in flight at once.
        group.written(results.len() + jobs.len() + rx.len(), took);
        match written {
            Ok(_) => acks.into_iter().for_each(|a| {
                let _ = a.send(WriteAck::Written);
            }),
            Err(Unwritten::Refused(batch_err))
                if results.len() > 1 && !matches!(batch_err, StoreError::LeaseLost) =>
            {
                warn!(run_id, error = %batch_err, size = results.len(), "batch write failed; writing its results one by one");
                for (result, ack) in results.into_iter().zip(acks) {
                    let outcome = match target.write_with_retries(&[result]).await {
                        Ok(_) => WriteAck::Written,
                        Err(unwritten) => ack_of(&unwritten),
                    };
                    if let WriteAck::Failed(e) = &outcome {
                        warn!(run_id, error = %e, "writing a result failed");
                    }
                    let _ = ack.send(outcome);
                }
            }
            Err(unwritten) => {
                let ack = ack_of(&unwritten);
                if let WriteAck::Failed(e) = &ack {
                    warn!(run_id, error = %e, "writing a result failed");
                }
                for a in acks {
                    let _ = a.send(ack.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::slots::ItemSlots;

    /// Records the size of every batch it is asked to write; each write
    /// takes `takes`.
    #[derive(Default)]
    struct BatchSizes {
        sizes: Mutex<Vec<usize>>,
        takes: Duration,
    }

    impl BatchSizes {
        fn taking(takes: Duration) -> Self {
            Self {
                takes,
                ..Self::default()
            }
        }

        fn sizes(&self) -> Vec<usize> {
            self.sizes.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl ResultSink for BatchSizes {
        async fn write(
            &self,
            _run_id: &str,
            _claim: &Claim,
            batch: Vec<NewResult>,
        ) -> Result<WriteOutcome, StoreError> {
            self.sizes.lock().unwrap().push(batch.len());
            if !self.takes.is_zero() {
                tokio::time::sleep(self.takes).await;
            }
            Ok(WriteOutcome {
                inserted: batch.len() as u64,
                duplicates: 0,
            })
        }

        /// Commits here stand for PostgreSQL's: the writer groups them.
        fn group_commit(&self) -> bool {
            true
        }
    }

    fn result(index: i64) -> NewResult {
        NewResult {
            item_id: format!("item-{index}"),
            item_index: index,
            trial: 0,
            item_version: 1,
            input: json!(index),
            output: Some(json!(index)),
            expected_output: None,
            latency: 1.0,
            error: None,
            error_kind: None,
            started_at: Utc::now(),
            completed_at: Utc::now(),
            retry_count: 0,
            trace_id: None,
            target_metadata: None,
            logs: None,
            scores: Vec::new(),
        }
    }

    /// Queues 40 results while the only write turn is held elsewhere,
    /// then lets the writer go; returns the batches it wrote.
    async fn batches_after_a_wait(other_tenant_here: bool) -> Vec<usize> {
        let turns = ItemSlots::new(1);
        let _other = other_tenant_here.then(|| turns.share("b", 1));
        let held = turns.share("a", 1).acquire().await;
        let sink = Arc::new(BatchSizes::default());
        let (writer, task) = ResultWriter::spawn(
            sink.clone(),
            "run".into(),
            Claim {
                owner: "owner".into(),
                number: 1,
            },
            64,
            turns.share("a", 1),
            CancellationToken::new(),
        );
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writes: Vec<_> = (0..40)
            .map(|i| {
                let writer = writer.clone();
                let started = started.clone();
                tokio::spawn(async move {
                    started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    // Queued in this same poll: the queue holds 128.
                    writer.write(result(i)).await
                })
            })
            .collect();
        // The test runtime has one thread: once every task has started,
        // every write is queued, while the turn is held.
        while started.load(std::sync::atomic::Ordering::SeqCst) < 40 {
            tokio::task::yield_now().await;
        }
        assert!(sink.sizes().is_empty(), "nothing written without a turn");
        drop(held);
        for w in writes {
            assert_eq!(w.await.unwrap(), WriteAck::Written);
        }
        drop(writer);
        task.await.unwrap();
        sink.sizes()
    }

    #[tokio::test]
    async fn a_tenant_alone_writes_what_queued_in_one_batch() {
        assert_eq!(batches_after_a_wait(false).await, vec![40]);
    }

    #[tokio::test]
    async fn a_tenant_writes_small_batches_while_another_tenant_has_runs_here() {
        let sizes = batches_after_a_wait(true).await;
        assert_eq!(sizes.iter().sum::<usize>(), 40, "{sizes:?}");
        assert!(
            sizes.iter().all(|&n| n <= SHARED_TURNS_BATCH),
            "batches of at most {SHARED_TURNS_BATCH}: {sizes:?}"
        );
    }

    fn spawn_writer(sink: Arc<BatchSizes>) -> (ResultWriter, tokio::task::JoinHandle<()>) {
        ResultWriter::spawn(
            sink,
            "run".into(),
            Claim {
                owner: "owner".into(),
                number: 1,
            },
            64,
            ItemSlots::new(1).share("a", 1),
            CancellationToken::new(),
        )
    }

    /// `items` tasks, each writing `each` results one after the other (an
    /// item waits for its result to be stored before the next starts).
    async fn items_in_flight(writer: &ResultWriter, items: i64, each: i64) {
        let tasks: Vec<_> = (0..items)
            .map(|item| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    for n in 0..each {
                        assert_eq!(
                            writer.write(result(item * each + n)).await,
                            WriteAck::Written
                        );
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }

    #[tokio::test]
    async fn many_items_in_flight_share_their_commits() {
        let sink = Arc::new(BatchSizes::taking(Duration::from_millis(2)));
        let (writer, task) = spawn_writer(sink.clone());
        items_in_flight(&writer, 16, 10).await;
        drop(writer);
        task.await.unwrap();
        let sizes = sink.sizes();
        assert_eq!(sizes.iter().sum::<usize>(), 160, "{sizes:?}");
        // One commit per result would be 160 commits; each commit here
        // holds several of the 16 results in flight.
        assert!(sizes.len() <= 160 / 4, "{} commits: {sizes:?}", sizes.len());
    }

    #[tokio::test]
    async fn a_lone_result_is_not_held_for_results_that_do_not_come() {
        // Writes take 50 ms: the bound on waiting for others is then
        // `MAX_LINGER` (5 ms), far below a write.
        let takes = Duration::from_millis(50);
        let sink = Arc::new(BatchSizes::taking(takes));
        let (writer, task) = spawn_writer(sink.clone());
        // 16 results in flight at once: the writer expects that many.
        items_in_flight(&writer, 16, 2).await;
        // Then a lone one: written after at most the bound, not held until
        // 16 results are queued (they never will be).
        let started = std::time::Instant::now();
        assert_eq!(writer.write(result(1000)).await, WriteAck::Written);
        let waited = started.elapsed();
        assert!(
            waited < takes + group_commit::MAX_LINGER + Duration::from_secs(1),
            "{waited:?}"
        );
        drop(writer);
        task.await.unwrap();
        assert_eq!(sink.sizes().last(), Some(&1));
    }
}
