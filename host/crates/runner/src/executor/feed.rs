//! Feeding a run's items to the pool: pending items are read one page at a
//! time and each starts when a slot of the run and a slot of the process
//! are free; the feed returns once every started item has been joined. The
//! process's slots are shared fairly between tenants and their runs
//! ([`crate::slots::ItemSlots`]), in proportion to each tenant's weight.

use std::sync::Arc;

use std::collections::{HashMap, HashSet};

use assay_store::{DatasetItem, TargetRecord};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, warn};

use super::start::Started;
use super::{Executor, STORAGE_RETRIES, STORAGE_RETRY_DELAY};
use crate::adaptive::AdaptiveLimit;
use crate::error::RunError;
use crate::rescore::TargetSource;
use crate::retry::backoff;
use crate::slots::Slot;

impl Executor {
    /// Reads pending items page by page and starts each when slots allow.
    /// Returns after every started item has been joined.
    pub(super) async fn feed_items(&self, run: &Started) -> Result<(), RunError> {
        let Started {
            tenant,
            run_id,
            options,
            shared,
            stop,
            weight,
            repeats,
            ..
        } = run;
        let (weight, repeats) = (*weight, *repeats);
        // The run's `maxConcurrency`, adapted down while the target's
        // upstream throttles (see `crate::adaptive`).
        let run_slots = AdaptiveLimit::new(options.max_concurrency);
        let process_slots = self.item_slots.share(tenant, weight);
        let call_slots = Arc::new(self.call_slots.share(tenant, weight));
        let mut tasks = JoinSet::new();
        // Process slots that finishing items keep for this run's next items
        // (see `Slot::fair_to_keep`). Several items often finish at once
        // (their results share a write), and a feeder asks for one slot at
        // a time: without this, all but one of their slots would go to a
        // busier tenant's waiting runs, and this run would wait for that
        // tenant's items to free others.
        let (kept_tx, mut kept_rx) = mpsc::unbounded_channel::<Slot>();
        let mut after: Option<i64> = None;
        let outcome = 'pages: loop {
            if stop.is_cancelled() {
                break Ok(());
            }
            let page = match self.read_page(tenant, run_id, after, stop).await {
                Ok(page) => page,
                Err(e) => break Err(e),
            };
            let (Some(first), Some(last)) = (page.first(), page.last()) else {
                break Ok(());
            };
            after = Some(last.position);
            // A re-scoring run reads the parent's outputs for the page in
            // one query; a trial the parent has no result for is skipped.
            let mut recorded = match &shared.target {
                TargetSource::Call(_) | TargetSource::Cached(_) => None,
                TargetSource::Recorded { parent_run_id } => {
                    let (from, to) = (first.position, last.position);
                    match self
                        .read_records(tenant, parent_run_id, from, to, stop)
                        .await
                    {
                        Ok(records) => Some(records),
                        Err(e) => break Err(e),
                    }
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
                match self.trials_to_do(tenant, run_id, page, repeats, stop).await {
                    Ok(work) => work,
                    Err(e) => break Err(e),
                }
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
                    _ = stop.cancelled() => break 'pages Ok(()),
                    p = run_slots.acquire() => p,
                };
                // A slot one of this run's items kept for it, if any (and
                // still fair to use: a tenant may have come meanwhile), else
                // the process's next free slot for this run.
                let process_permit = loop {
                    let slot = tokio::select! {
                        biased;
                        _ = stop.cancelled() => break 'pages Ok(()),
                        Some(kept) = kept_rx.recv() => kept,
                        p = process_slots.acquire() => break p,
                    };
                    if slot.fair_to_keep() {
                        break slot;
                    }
                };
                let ctx = shared.clone();
                let calls = call_slots.clone();
                let kept = kept_tx.clone();
                let limit = run_slots.clone();
                tasks.spawn(
                    async move {
                        ctx.process(item, trial, record, &calls, run_permit).await;
                        // The run's next item takes this slot if the run may
                        // start one now (not while its adaptive limit holds
                        // it back: the slot would idle) and the fair policy
                        // would hand the slot back to it anyway. A send after
                        // the feed stopped drops it: given back.
                        if limit.in_flight() < limit.current() && process_permit.fair_to_keep() {
                            let _ = kept.send(process_permit);
                        }
                    }
                    .in_current_span(),
                );
                while let Some(joined) = tasks.try_join_next() {
                    log_panic(run_id, joined);
                }
            }
        };
        // No item starts any more: slots kept for it go back to the pool,
        // and so does every slot of an item finishing from now on.
        drop(kept_rx);
        while let Some(joined) = tasks.join_next().await {
            log_panic(run_id, joined);
        }
        outcome
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

fn log_panic(run_id: &str, joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined {
        warn!(run_id, error = %e, "an item task panicked");
    }
}
