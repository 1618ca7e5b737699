//! Feeding a run's items to the pool, one chunk of item positions at a
//! time: the feed claims a chunk (see [`assay_store::RunStore::claim_chunk`];
//! several processes may execute one run), reads its pending items one page
//! at a time and starts each when a slot of the run and a slot of the
//! process are free, then claims the next chunk while the first one's items
//! finish. A chunk is marked done once every item in it has its result. The
//! process's slots are shared fairly between tenants and their runs
//! ([`crate::slots::ItemSlots`]), in proportion to each tenant's weight.
//!
//! When every chunk is handed out, a helper leaves the run; the lead waits
//! for the chunks others hold (taking over those whose lease lapses) until
//! all are done. The feed returns once every started item has been joined.

use std::sync::Arc;
use std::time::Duration;

use std::collections::{HashMap, HashSet};

use assay_store::{ChunkGrant, DatasetItem, StoreError, TargetRecord};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, warn};

use super::chunks::{ChunkBook, ChunkPart};
use super::start::{Role, Started};
use super::{Executor, STORAGE_RETRIES, STORAGE_RETRY_DELAY};
use crate::adaptive::AdaptiveLimit;
use crate::error::RunError;
use crate::rescore::TargetSource;
use crate::retry::backoff;
use crate::slots::{RunShare, Slot};

/// How often a lead whose run has no chunk left to hand out checks whether
/// the chunks other processes hold are done (or lapsed, to take them over).
/// Its own chunks wake it at once when done.
const CHUNK_POLL: Duration = Duration::from_millis(200);

/// What the item tasks of one run's feed share.
struct Pool {
    /// The run's `maxConcurrency`, adapted down while the target's upstream
    /// throttles (see `crate::adaptive`).
    run_slots: Arc<AdaptiveLimit>,
    process_slots: RunShare,
    call_slots: Arc<RunShare>,
    tasks: JoinSet<()>,
    /// Process slots that finishing items keep for this run's next items
    /// (see `Slot::fair_to_keep`). Several items often finish at once
    /// (waiting together for a place among the completing items, or just
    /// computing alike), and a feeder asks for one slot at a
    /// time: without this, all but one of their slots would go to a busier
    /// tenant's waiting runs, and this run would wait for that tenant's
    /// items to free others.
    kept_tx: mpsc::UnboundedSender<Slot>,
    kept_rx: mpsc::UnboundedReceiver<Slot>,
}

/// How feeding one chunk ended.
enum Fed {
    /// Every pending item of the chunk started.
    All,
    /// The run stopped before.
    Stopped,
}

impl Executor {
    /// Claims chunks of the run and feeds their pending items until none is
    /// left (or the run stops). Returns after every started item has been
    /// joined.
    pub(super) async fn feed_items(&self, run: &Started) -> Result<(), RunError> {
        let Started {
            tenant,
            run_id,
            claim,
            role,
            options,
            stop,
            weight,
            ..
        } = run;
        let (kept_tx, kept_rx) = mpsc::unbounded_channel::<Slot>();
        let mut pool = Pool {
            run_slots: AdaptiveLimit::new(options.max_concurrency),
            process_slots: self.item_slots.share(tenant, *weight),
            call_slots: Arc::new(self.call_slots.share(tenant, *weight)),
            tasks: JoinSet::new(),
            kept_tx,
            kept_rx,
        };
        let book = ChunkBook::new(
            self.store.clone(),
            run_id.clone(),
            claim.clone(),
            run.shared.abort.clone(),
        );
        let outcome = loop {
            if stop.is_cancelled() || book.run_done() {
                break Ok(());
            }
            let grant = match self.claim_chunk(run, stop).await {
                Ok(grant) => grant,
                Err(e) => break Err(e),
            };
            let (first, end) = match grant {
                ChunkGrant::Chunk { first, end } => (first, end),
                ChunkGrant::Busy if *role == Role::Lead => {
                    // No item starts while the lead waits: slots its items
                    // kept go back to the process at once (other runs, a
                    // run this process helps, need them meanwhile).
                    while let Ok(slot) = pool.kept_rx.try_recv() {
                        drop(slot);
                    }
                    let waited = tokio::time::sleep(CHUNK_POLL);
                    tokio::pin!(waited);
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = book.chunk_done() => break,
                            _ = &mut waited => break,
                            Some(slot) = pool.kept_rx.recv() => drop(slot),
                        }
                    }
                    continue;
                }
                ChunkGrant::Busy | ChunkGrant::Done | ChunkGrant::Stopped => break Ok(()),
            };
            let part = book.open(first);
            match self.feed_chunk(run, &mut pool, (first, end), &part).await {
                Ok(Fed::All) => part.finish(true).await,
                Ok(Fed::Stopped) => {
                    part.finish(false).await;
                    break Ok(());
                }
                Err(e) => {
                    part.finish(false).await;
                    break Err(e);
                }
            }
        };
        // No item starts any more: slots kept for it go back to the pool,
        // and so does every slot of an item finishing from now on.
        drop(pool.kept_rx);
        while let Some(joined) = pool.tasks.join_next().await {
            log_panic(run_id, joined);
        }
        outcome
    }

    /// Claims the run's next chunk, retried for as long as the database
    /// fails until the run stops (the heartbeat stops it once the lease
    /// could not be renewed for a whole lease); `Stopped` then.
    async fn claim_chunk(
        &self,
        run: &Started,
        stop: &CancellationToken,
    ) -> Result<ChunkGrant, RunError> {
        let chunk_size = i64::try_from(self.chunk_size).unwrap_or(i64::MAX);
        let mut attempt = 0u32;
        loop {
            match self
                .store
                .claim_chunk(&run.run_id, &run.claim, chunk_size, self.lease)
                .await
            {
                Ok(grant) => return Ok(grant),
                Err(StoreError::Database(e)) => {
                    warn!(run.run_id, error = %e, attempt, "claiming a chunk failed; retrying");
                    let wait = backoff(STORAGE_RETRY_DELAY, attempt).min(CHUNK_POLL * 10);
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(ChunkGrant::Stopped),
                        _ = tokio::time::sleep(wait) => {}
                    }
                    attempt = attempt.saturating_add(1);
                }
                Err(e) => return Err(RunError::Store(e)),
            }
        }
    }

    /// Reads the pending items of chunk `first..end` page by page and
    /// starts each when slots allow; every item task holds a part of
    /// `chunk`.
    async fn feed_chunk(
        &self,
        run: &Started,
        pool: &mut Pool,
        (first, end): (i64, i64),
        chunk: &ChunkPart,
    ) -> Result<Fed, RunError> {
        let Started {
            tenant,
            run_id,
            shared,
            stop,
            repeats,
            ..
        } = run;
        let repeats = *repeats;
        let mut after: Option<i64> = Some(first - 1);
        loop {
            if stop.is_cancelled() {
                return Ok(Fed::Stopped);
            }
            let page = self.read_page(tenant, run_id, after, end, stop).await?;
            let (Some(first), Some(last)) = (page.first(), page.last()) else {
                return Ok(Fed::All);
            };
            after = Some(last.position);
            // A short page, or one reaching the chunk's end, was the
            // chunk's last: no need to read an empty one after it.
            let last_page = page.len() < self.page_size || last.position >= end - 1;
            // A re-scoring run reads the parent's outputs for the page in
            // one query; a trial the parent has no result for is skipped.
            let mut recorded = match &shared.target {
                TargetSource::Call(_) | TargetSource::Cached(_) => None,
                TargetSource::Recorded { parent_run_id } => {
                    let (from, to) = (first.position, last.position);
                    Some(
                        self.read_records(tenant, parent_run_id, from, to, stop)
                            .await?,
                    )
                }
            };
            // A run with the output cache on looks the page up in one query;
            // an item without a stored output calls the target. (A run with
            // repeats never has the cache on: `RunOptions::validate`.)
            let mut cached = match &shared.target {
                TargetSource::Cached(cache) => cache.lookup(&page).await,
                _ => HashMap::new(),
            };
            // Without repeats each pending item is one trial (trial 0);
            // with repeats, the trials of the page's items without a result.
            let work = if repeats > 1 {
                self.trials_to_do(tenant, run_id, page, repeats, stop)
                    .await?
            } else {
                page.into_iter().map(|item| (item, 0)).collect()
            };
            for (item, trial) in work {
                let record = match &mut recorded {
                    None => cached.remove(&item.id),
                    Some(records) => match records.remove(&(item.id.clone(), trial)) {
                        Some(record) => Some(record),
                        None => continue,
                    },
                };
                let run_permit = tokio::select! {
                    biased;
                    _ = stop.cancelled() => return Ok(Fed::Stopped),
                    p = pool.run_slots.acquire() => p,
                };
                // A slot one of this run's items kept for it, if any (and
                // still fair to use: a tenant may have come meanwhile), else
                // the process's next free slot for this run.
                let process_permit = loop {
                    let slot = tokio::select! {
                        biased;
                        _ = stop.cancelled() => return Ok(Fed::Stopped),
                        Some(kept) = pool.kept_rx.recv() => kept,
                        p = pool.process_slots.acquire() => break p,
                    };
                    if slot.fair_to_keep() {
                        break slot;
                    }
                };
                let ctx = shared.clone();
                let calls = pool.call_slots.clone();
                let kept = pool.kept_tx.clone();
                let limit = pool.run_slots.clone();
                let part = chunk.join();
                // Once the item's result is queued for its write: the run's
                // next item takes this slot if the run may start one now (not
                // while its adaptive limit holds it back: the slot would
                // idle) and the fair policy would hand the slot back to it
                // anyway. A send after the feed stopped drops it: given back.
                // Dropped uncalled (the run stopping), the slot goes back.
                let hand_on = move || {
                    if limit.in_flight() < limit.current() && process_permit.fair_to_keep() {
                        let _ = kept.send(process_permit);
                    } else {
                        drop(process_permit);
                    }
                };
                pool.tasks.spawn(
                    async move {
                        let settled = ctx
                            .process(item, trial, record, &calls, run_permit, hand_on)
                            .await;
                        part.finish(settled).await;
                    }
                    .in_current_span(),
                );
                while let Some(joined) = pool.tasks.try_join_next() {
                    log_panic(run_id, joined);
                }
            }
            if last_page {
                return Ok(Fed::All);
            }
        }
    }

    /// The trials of `page` (items of a run with `repeats` trials each) that
    /// have no result yet, in item then trial order; the stored trials are
    /// read in one query, retried with backoff like a page of items.
    async fn trials_to_do(
        &self,
        tenant: &str,
        run_id: &str,
        page: Vec<DatasetItem>,
        repeats: i64,
        stop: &CancellationToken,
    ) -> Result<Vec<(DatasetItem, i64)>, RunError> {
        let ids: Vec<&str> = page.iter().map(|i| i.id.as_str()).collect();
        let mut attempt = 0u32;
        let stored = loop {
            match self.store.stored_trials(tenant, run_id, &ids).await {
                Ok(stored) => break stored,
                Err(e) if attempt < STORAGE_RETRIES && !stop.is_cancelled() => {
                    warn!(run_id, error = %e, attempt, "reading stored trials failed; retrying");
                    tokio::time::sleep(backoff(STORAGE_RETRY_DELAY, attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(RunError::Store(e)),
            }
        };
        let done: HashSet<(&str, i64)> = stored.iter().map(|(id, t)| (id.as_str(), *t)).collect();
        let mut work = Vec::with_capacity(page.len());
        for item in &page {
            for trial in 0..repeats {
                if !done.contains(&(item.id.as_str(), trial)) {
                    work.push((item.clone(), trial));
                }
            }
        }
        Ok(work)
    }

    /// The outputs run `parent` stored for item indexes `[from, to]`, by
    /// item id and trial, retried with backoff on storage errors like a
    /// page of items.
    async fn read_records(
        &self,
        tenant: &str,
        parent: &str,
        from: i64,
        to: i64,
        stop: &CancellationToken,
    ) -> Result<HashMap<(String, i64), TargetRecord>, RunError> {
        let mut attempt = 0u32;
        loop {
            match self.store.target_records(tenant, parent, from, to).await {
                Ok(records) => {
                    return Ok(records
                        .into_iter()
                        .map(|r| ((r.item_id.clone(), r.trial), r))
                        .collect());
                }
                Err(e)
                    if attempt < STORAGE_RETRIES && !stop.is_cancelled() && !e.is_not_found() =>
                {
                    warn!(parent, error = %e, attempt, "reading the parent's outputs failed; retrying");
                    tokio::time::sleep(backoff(STORAGE_RETRY_DELAY, attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(RunError::Store(e)),
            }
        }
    }

    /// One page of pending items below position `end`, retried with backoff on storage errors
    /// (a busy database or a dropped connection must not end the run).
    async fn read_page(
        &self,
        tenant: &str,
        run_id: &str,
        after: Option<i64>,
        end: i64,
        stop: &CancellationToken,
    ) -> Result<Vec<DatasetItem>, RunError> {
        let mut attempt = 0u32;
        loop {
            match self
                .store
                .pending_items_in(tenant, run_id, after, Some(end), self.page_size as i64)
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

fn log_panic(run_id: &str, joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined {
        warn!(run_id, error = %e, "an item task panicked");
    }
}
