//! The run executor: streams a run's items through its target and scorers on
//! a bounded pool and persists each result as it completes.
//!
//! [`Executor::execute`] takes one run through three steps, one module each
//! (see also `docs/runs.md`):
//! 1. `start`: claim the run's lease (status `running`) and start the tasks
//!    that live as long as the run: the lease heartbeat, the stop watcher,
//!    the cancel recorder and the batching result writer;
//! 2. `feed`: read the items that have no result yet, page by page (never
//!    all at once), and start each one when a slot of the run
//!    (`maxConcurrency`) and a slot of the process are free (the process's
//!    slots are shared fairly between tenants, then runs: [`ItemSlots`]); `item` executes
//!    one: target (with retries for transient errors and the item deadline),
//!    then every scorer in parallel, then hands its result to the batched
//!    writer and its slots to the run's next item, then waits for the write
//!    and `on_item_complete` (awaited; at most `maxConcurrency` or 64 items,
//!    whichever is more, wait so, which is the backpressure), then the
//!    progress counters; the feed returns once every started item has been
//!    joined;
//! 3. `finish`: stop the helper tasks, then finalize the run or leave it
//!    resumable.
//!
//! Cancelling stops new items, cancels the in-flight ones, joins them and
//! finalizes the run as `cancelled`; nothing is written after that. A process
//! shutdown (`drain`, then `abort`) stops without finalizing and releases
//! the lease, so the next start resumes the run where it stopped.

mod chunks;
mod feed;
mod finish;
mod item;
mod start;

use std::sync::Arc;
use std::time::Duration;

use assay_store::{Claim, Run, Store};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::assembly::{DEFAULT_LEASE, DEFAULT_PROCESS_ITEM_SLOTS};
use crate::config::RunOptions;
use crate::error::RunError;
use crate::item::ItemWithScores;
use crate::plugins::Scorer;
use crate::rescore::TargetSource;
use crate::slots::ItemSlots;
use crate::summary::RunSummary;
use crate::writer::ResultSink;

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

/// Plugin calls executing at once, by default: twice the cores.
///
/// Item slots bound the items *in flight* (hundreds, so that runs against a
/// slow service overlap their waits). Plugin calls without network are pure
/// CPU, so more of them at once than there are cores only makes each one
/// slower, and makes a small run of one tenant crawl behind the hundreds of
/// in-flight items of another even when it gets its share of item slots.
/// Calls therefore also pass a second, small gate, handed out as fairly as
/// the item slots (the same [`ItemSlots`] policy): a tenant's call waits for
/// at most a few other calls, not for every item in flight.
pub fn default_call_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

/// Process-wide settings shared by every run this process executes.
#[derive(Clone)]
pub struct Executor {
    store: Arc<dyn Store>,
    sink: Arc<dyn ResultSink>,
    owner: String,
    lease: Duration,
    item_slots: ItemSlots,
    call_slots: ItemSlots,
    write_slots: ItemSlots,
    page_size: usize,
    chunk_size: usize,
    /// Whether runs this executor holds may be helped by other processes.
    shared: bool,
    max_batch: usize,
}

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
            item_slots: ItemSlots::new(DEFAULT_PROCESS_ITEM_SLOTS),
            call_slots: ItemSlots::new(default_call_slots()),
            write_slots: ItemSlots::new(1),
            page_size: 256,
            chunk_size: DEFAULT_CHUNK_SIZE,
            shared: true,
            max_batch: 64,
        }
    }

    /// Caps the items in flight across every run of this executor.
    pub fn with_process_item_slots(mut self, slots: usize) -> Self {
        self.item_slots = ItemSlots::new(slots);
        self
    }

    /// Caps the plugin calls that execute at once across every run (see
    /// [`default_call_slots`]).
    pub fn with_call_slots(mut self, slots: usize) -> Self {
        self.call_slots = ItemSlots::new(slots);
        self
    }

    /// Caps the result batches written at once across every run (default
    /// one). The runs' writers take turns fairly between tenants (the
    /// [`ItemSlots`] policy): with one database writer, a plain lock would
    /// make a small run wait behind a batch of every busy run of other
    /// tenants for each of its writes.
    pub fn with_write_slots(mut self, slots: usize) -> Self {
        self.write_slots = ItemSlots::new(slots);
        self
    }

    /// The process's item slots, shared by every run of this executor.
    pub fn item_slots(&self) -> &ItemSlots {
        &self.item_slots
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

    /// Sets how many item positions one chunk of a run covers (see
    /// [`DEFAULT_CHUNK_SIZE`]).
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size.max(1);
        self
    }

    /// Runs this executor holds are not shared with other processes: it
    /// marks them exclusive (`assay_store::RunStore::set_run_exclusive`),
    /// so no other process helps execute them (if it dies, the process
    /// that takes the run over decides anew). For a caller that follows the run through
    /// [`RunHooks::on_item_complete`] alone, such as `assay run` building
    /// its report and output file, which would miss the items another
    /// process executed.
    pub fn unshared(mut self) -> Self {
        self.shared = false;
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

    /// Items this executor runs at once across all its runs.
    pub fn process_item_slots(&self) -> usize {
        self.item_slots.capacity()
    }

    /// Executes `plan` to the end (or until cancelled / shut down),
    /// holding the run's lease: this process finalizes the run, once every
    /// chunk of it is done, whichever process executed it.
    pub async fn execute(&self, plan: RunPlan, hooks: RunHooks) -> Result<RunSummary, RunError> {
        self.take_part(plan, hooks, None).await
    }

    /// Helps execute a run another process holds, under `claim` (from
    /// [`assay_store::RunStore::join_run`]): claims chunks of it until none
    /// is left to hand out, then returns; the run's lease holder finalizes
    /// it. The summary is the run as stored when this process left it.
    pub async fn help(
        &self,
        plan: RunPlan,
        claim: Claim,
        hooks: RunHooks,
    ) -> Result<RunSummary, RunError> {
        self.take_part(plan, hooks, Some(claim)).await
    }

    async fn take_part(
        &self,
        plan: RunPlan,
        hooks: RunHooks,
        joined: Option<Claim>,
    ) -> Result<RunSummary, RunError> {
        // Every log line of the run (its item tasks and helpers included)
        // carries the run id and the tenant.
        let span = tracing::info_span!("run", run_id = %plan.run.id, tenant = %plan.tenant);
        async move {
            let started = self.start(plan, &hooks, joined).await?;
            let feed = self.feed_items(&started).await;
            // Join everything before finalizing: no write after finalization.
            let joined = started.join().await;
            self.finalize(joined, feed, &hooks).await
        }
        .instrument(span)
        .await
    }
}

/// Item positions per chunk of a run: the unit processes claim when
/// several execute one run. Small enough that three processes share a
/// run of a few thousand items, large enough that claiming (one write per
/// chunk, and one more when it is done) stays far below the result writes.
pub const DEFAULT_CHUNK_SIZE: usize = 256;

/// Retries of a failed storage read or write before giving up on it.
pub(crate) const STORAGE_RETRIES: u32 = 4;
/// Base delay between storage retries (exponential, with jitter).
pub(crate) const STORAGE_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Everything needed to execute one run that already exists in storage.
pub struct RunPlan {
    /// The run's tenant.
    pub tenant: String,
    /// The run row (status `pending`, or `running` when resuming).
    pub run: Run,
    /// Where the outputs come from: the target, resolved, or the stored
    /// results of the run being re-scored.
    pub target: TargetSource,
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
    /// Called once per finished item, once its result is stored, in the
    /// order the writes are acknowledged; awaited. Calls for one run may
    /// overlap (up to `maxConcurrency` or 64, whichever is more, even at
    /// `maxConcurrency` 1): items behind keep computing meanwhile.
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
