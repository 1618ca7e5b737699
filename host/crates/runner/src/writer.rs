//! The batching result writer.
//!
//! Item tasks hand their result to one writer task per run and wait for the
//! acknowledgement. The writer takes everything queued at that moment (up to
//! a batch limit) and writes it in one transaction: under load many items
//! share a commit, and a lone item is written at once (no artificial linger).
//! If a batch fails, its items are retried one by one so that one bad result
//! cannot fail its neighbours.

use std::sync::Arc;

use assay_store::{NewResult, Store, StoreError, WriteOutcome};
use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::executor::{STORAGE_RETRIES, STORAGE_RETRY_DELAY};
use crate::retry::backoff;
use crate::slots::RunShare;

/// Where results go. The store is the normal sink; tests substitute one that
/// fails on purpose.
#[async_trait]
pub trait ResultSink: Send + Sync {
    /// Writes a batch in one transaction, fenced by `owner`'s lease.
    async fn write(
        &self,
        run_id: &str,
        owner: &str,
        batch: Vec<NewResult>,
    ) -> Result<WriteOutcome, StoreError>;
}

#[async_trait]
impl ResultSink for Arc<dyn Store> {
    async fn write(
        &self,
        run_id: &str,
        owner: &str,
        batch: Vec<NewResult>,
    ) -> Result<WriteOutcome, StoreError> {
        self.write_results(run_id, owner, batch).await
    }
}

/// How writing one result ended.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteAck {
    /// Stored (or already stored by an earlier attempt: idempotent).
    Written,
    /// Another process holds the run now; nothing was written.
    LeaseLost,
    /// Storage failed for this result.
    Failed(String),
}

type Job = (NewResult, oneshot::Sender<WriteAck>);

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
    /// go into the next batch.
    pub fn spawn(
        sink: Arc<dyn ResultSink>,
        run_id: String,
        owner: String,
        max_batch: usize,
        turns: RunShare,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel::<Job>(max_batch.max(1) * 2);
        let handle = tokio::spawn(tracing::Instrument::in_current_span(write_loop(
            sink,
            run_id,
            owner,
            max_batch.max(1),
            rx,
            turns,
        )));
        (Self { tx }, handle)
    }

    /// Queues `result` and waits until it is stored (or failed).
    pub async fn write(&self, result: NewResult) -> WriteAck {
        let (ack_tx, ack_rx) = oneshot::channel();
        if self.tx.send((result, ack_tx)).await.is_err() {
            return WriteAck::Failed("result writer stopped".into());
        }
        ack_rx
            .await
            .unwrap_or_else(|_| WriteAck::Failed("result writer stopped".into()))
    }
}

/// Writes `batch`, retrying with backoff while the store reports a database
/// error (busy, locked, connection lost): such errors pass, and giving up on
/// them would lose results that were already computed.
async fn write_with_retries(
    sink: &dyn ResultSink,
    run_id: &str,
    owner: &str,
    batch: &[NewResult],
) -> Result<WriteOutcome, StoreError> {
    let mut attempt = 0;
    loop {
        match sink.write(run_id, owner, batch.to_vec()).await {
            Err(StoreError::Database(e)) if attempt < STORAGE_RETRIES => {
                warn!(run_id, error = %e, attempt, "writing results failed; retrying");
                tokio::time::sleep(backoff(STORAGE_RETRY_DELAY, attempt)).await;
                attempt += 1;
            }
            outcome => return outcome,
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

async fn write_loop(
    sink: Arc<dyn ResultSink>,
    run_id: String,
    owner: String,
    max_batch: usize,
    mut rx: mpsc::Receiver<Job>,
    turns: RunShare,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
    loop {
        let limit = batch_limit(max_batch, &turns);
        if rx.recv_many(&mut jobs, limit).await == 0 {
            break;
        }
        let _turn = turns.acquire().await;
        // Results that arrived while waiting for the turn join this batch.
        while jobs.len() < limit {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (results, acks): (Vec<_>, Vec<_>) = std::mem::take(&mut jobs).into_iter().unzip();
        let started = std::time::Instant::now();
        let written = write_with_retries(sink.as_ref(), &run_id, &owner, &results).await;
        crate::metrics::result_batch_written(results.len(), started.elapsed(), written.is_ok());
        match written {
            Ok(_) => acks.into_iter().for_each(|a| {
                let _ = a.send(WriteAck::Written);
            }),
            Err(StoreError::LeaseLost) => acks.into_iter().for_each(|a| {
                let _ = a.send(WriteAck::LeaseLost);
            }),
            Err(batch_err) if results.len() == 1 => {
                warn!(run_id, error = %batch_err, "writing a result failed");
                for a in acks {
                    let _ = a.send(WriteAck::Failed(batch_err.to_string()));
                }
            }
            Err(batch_err) => {
                warn!(run_id, error = %batch_err, size = results.len(), "batch write failed; writing its results one by one");
                for (result, ack) in results.into_iter().zip(acks) {
                    let outcome =
                        match write_with_retries(sink.as_ref(), &run_id, &owner, &[result]).await {
                            Ok(_) => WriteAck::Written,
                            Err(StoreError::LeaseLost) => WriteAck::LeaseLost,
                            Err(e) => {
                                warn!(run_id, error = %e, "writing a result failed");
                                WriteAck::Failed(e.to_string())
                            }
                        };
                    let _ = ack.send(outcome);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::slots::ItemSlots;

    /// Records the size of every batch it is asked to write.
    #[derive(Default)]
    struct BatchSizes(Mutex<Vec<usize>>);

    #[async_trait]
    impl ResultSink for BatchSizes {
        async fn write(
            &self,
            _run_id: &str,
            _owner: &str,
            batch: Vec<NewResult>,
        ) -> Result<WriteOutcome, StoreError> {
            self.0.lock().unwrap().push(batch.len());
            Ok(WriteOutcome {
                inserted: batch.len() as u64,
                duplicates: 0,
            })
        }
    }

    fn result(index: i64) -> NewResult {
        NewResult {
            item_id: format!("item-{index}"),
            item_index: index,
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
            "owner".into(),
            64,
            turns.share("a", 1),
        );
        let writes: Vec<_> = (0..40)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(result(i)).await })
            })
            .collect();
        // Every write is queued (the queue holds 128) while the turn is held.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            sink.0.lock().unwrap().is_empty(),
            "nothing written without a turn"
        );
        drop(held);
        for w in writes {
            assert_eq!(w.await.unwrap(), WriteAck::Written);
        }
        drop(writer);
        task.await.unwrap();
        sink.0.lock().unwrap().clone()
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
}
