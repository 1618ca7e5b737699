//! The storage contract, one trait per area, and [`Store`], their union.
//!
//! Each backend implements every area trait directly (`impl DatasetStore for
//! SqliteStore` in `sqlite/datasets.rs`, ...); [`Store`] is implemented for
//! any type that implements them all, so callers keep using
//! `Arc<dyn Store>`. See `docs/storage.md`.
//!
//! Every call that names a dataset, run or plugin takes the tenant and scopes
//! by it: another tenant's ids behave exactly like unknown ids
//! ([`crate::StoreError::NotFound`]). The run-execution calls
//! (`renew_lease`, `write_results`, `finish_run`, ...) are keyed by the run
//! id and the [`Claim`] instead (lease owner and claim number): only the
//! claim that took a run last (tenant-scoped or global) may use them.

use std::time::Duration;

use async_trait::async_trait;

use crate::cache::OutputCacheStore;
use crate::error::StoreResult;
use crate::models::*;
use crate::network::{GrantStore, SecretStore};
use crate::tenancy::{ApiKeyStore, TenancyStore};

/// Storage for datasets, items and their versions, runs, results, scores,
/// plugins and tenants: every area trait at once.
pub trait Store:
    Backend
    + TenantStore
    + TenancyStore
    + ApiKeyStore
    + DatasetStore
    + ItemStore
    + RunStore
    + ResultStore
    + PluginStore
    + GrantStore
    + SecretStore
    + OutputCacheStore
{
}

impl<T> Store for T where
    T: Backend
        + TenantStore
        + TenancyStore
        + ApiKeyStore
        + DatasetStore
        + ItemStore
        + RunStore
        + ResultStore
        + PluginStore
        + GrantStore
        + SecretStore
        + OutputCacheStore
{
}

/// Which database a store talks to, and whether it answers.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// A round trip to the database (for health checks).
    async fn ping(&self) -> StoreResult<()>;
}

/// Tenants and their limits.
#[async_trait]
pub trait TenantStore: Send + Sync + 'static {
    /// A tenant and its limits.
    async fn get_tenant(&self, id: &str) -> StoreResult<Tenant>;
    /// Creates or replaces a tenant's limits.
    async fn upsert_tenant(&self, tenant: &Tenant) -> StoreResult<Tenant>;
}

/// Datasets and their version history.
#[async_trait]
pub trait DatasetStore: Send + Sync + 'static {
    /// Creates a dataset at version 0. Names are unique per tenant
    /// (`Conflict` otherwise); schemas must be valid JSON Schemas.
    async fn create_dataset(&self, tenant: &str, new: NewDataset) -> StoreResult<Dataset>;
    async fn get_dataset(&self, tenant: &str, id: &str) -> StoreResult<Dataset>;
    /// The dataset called `name`, if any.
    async fn find_dataset_by_name(&self, tenant: &str, name: &str) -> StoreResult<Option<Dataset>>;
    /// Newest first.
    async fn list_datasets(&self, tenant: &str, page: Page) -> StoreResult<Paged<Dataset>>;
    /// Updates fields; a schema change re-validates every live item (a
    /// failure is a `Validation` error naming up to 10 items, and nothing
    /// changes) and bumps the version. Other fields do not bump it.
    async fn update_dataset(
        &self,
        tenant: &str,
        id: &str,
        patch: DatasetPatch,
    ) -> StoreResult<Dataset>;
    /// Deletes the dataset with its items, history, runs, results and
    /// scores. `Conflict` while one of its runs is pending or running.
    async fn delete_dataset(&self, tenant: &str, id: &str) -> StoreResult<()>;
    /// Newest first.
    async fn list_dataset_versions(
        &self,
        tenant: &str,
        dataset_id: &str,
        page: Page,
    ) -> StoreResult<Paged<DatasetVersion>>;
}

/// Items of a dataset and their history.
#[async_trait]
pub trait ItemStore: Send + Sync + 'static {
    /// Adds items (validated, all or nothing) with one version bump.
    /// Returns them in insertion order; an empty list changes nothing.
    async fn add_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        items: Vec<NewItem>,
    ) -> StoreResult<Vec<DatasetItem>>;
    /// Adds items that arrive in batches (a file being read), in one
    /// transaction with one version bump: all or nothing, with memory for
    /// one batch at a time. Batches are validated and the tenant's limits
    /// checked as they come. The feed must end with [`ItemFeed::Done`]; if
    /// it closes without it, nothing is added.
    async fn add_items_streamed(
        &self,
        tenant: &str,
        dataset_id: &str,
        feed: tokio::sync::mpsc::Receiver<ItemFeed>,
    ) -> StoreResult<StreamedItems>;
    /// A live item.
    async fn get_item(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
    ) -> StoreResult<DatasetItem>;
    /// Changes an item (validated), with one version bump.
    async fn update_item(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        patch: ItemPatch,
    ) -> StoreResult<DatasetItem>;
    /// Deletes live items, with one version bump; returns how many were
    /// deleted (unknown ids are ignored; 0 deleted: no bump).
    async fn delete_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        ids: &[String],
    ) -> StoreResult<u64>;
    /// Items by position (ascending, the dataset order), live or at
    /// `query.version`, optionally filtered by `query.search`.
    async fn list_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        query: ItemQuery,
    ) -> StoreResult<Paged<DatasetItem>>;
    /// Exactly the items of dataset version `version`, by position, after
    /// `after_position` (keyset paging). Each item is shown as it was at
    /// that version.
    async fn items_at_version(
        &self,
        tenant: &str,
        dataset_id: &str,
        version: i64,
        after_position: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<DatasetItem>>;
    /// How many items dataset version `version` has.
    async fn count_items_at_version(
        &self,
        tenant: &str,
        dataset_id: &str,
        version: i64,
    ) -> StoreResult<i64>;
    /// An item's history, newest first (works for deleted items).
    async fn list_item_versions(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        page: Page,
    ) -> StoreResult<Paged<ItemVersion>>;
    /// One version (from 1) of an item.
    async fn get_item_version(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        version_number: i64,
    ) -> StoreResult<ItemVersion>;
}

/// Runs, and their execution state: leases, pending items, finalization.
#[async_trait]
pub trait RunStore: Send + Sync + 'static {
    /// Inserts a `pending` run pinned to `new.dataset_version` (O(1): no
    /// per-item rows).
    async fn create_run(&self, tenant: &str, new: NewRun) -> StoreResult<Run>;
    async fn get_run(&self, tenant: &str, id: &str) -> StoreResult<Run>;
    /// Newest first, optionally of one dataset.
    async fn list_runs(
        &self,
        tenant: &str,
        dataset_id: Option<&str>,
        page: Page,
    ) -> StoreResult<Paged<Run>>;
    /// Deletes a run with its results and scores; `Conflict` while running.
    async fn delete_run(&self, tenant: &str, id: &str) -> StoreResult<()>;
    /// pending → cancelled at once; running → `cancelRequested`; finished →
    /// `Conflict`.
    async fn request_cancel(&self, tenant: &str, id: &str) -> StoreResult<Run>;

    /// Takes the next run and sets it running with a lease for `owner`:
    /// first a running run whose lease expired (or was released); else,
    /// among tenants with fewer than `maxActiveRuns` running, the oldest
    /// pending run of the tenant with the fewest runs running (in every
    /// process) per unit of its `weight`, the older run on a tie. Runs of
    /// one tenant are therefore taken in creation order. See
    /// `docs/fair-share.md`.
    ///
    /// Runs in `executing` are never taken: the caller executes them
    /// already, and claiming one again (its lease lapsed while, say, its
    /// plugins loaded) would start a second execution of it in the same
    /// process.
    async fn claim_next_run(
        &self,
        owner: &str,
        lease: Duration,
        executing: &[String],
    ) -> StoreResult<Option<(String, Run)>>;
    /// Like [`RunStore::claim_next_run`], but takes only the oldest pending
    /// run of a tenant that has no run running at all (and may run one). A
    /// scheduler whose run capacity is full uses it, so that a tenant with
    /// new work does not wait for another tenant's runs to finish.
    async fn claim_next_run_of_idle_tenant(
        &self,
        owner: &str,
        lease: Duration,
        executing: &[String],
    ) -> StoreResult<Option<(String, Run)>>;
    /// Takes a specific run: pending, running with an expired or released
    /// lease, or already held by `owner`. `Conflict` when another live owner
    /// holds it or it is finished.
    ///
    /// Every claim (this one and the `claim_next_*` ones) increments the
    /// run's [`Run::claim_number`]; the fenced calls below take the
    /// [`Claim`] (owner and number) and refuse an older claim with
    /// `LeaseLost`, even one of the same owner.
    async fn claim_run(
        &self,
        tenant: &str,
        run_id: &str,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<Run>;
    /// Extends the lease of `claim`; `LeaseLost` when it no longer holds
    /// it.
    async fn renew_lease(
        &self,
        run_id: &str,
        claim: &Claim,
        lease: Duration,
    ) -> StoreResult<RunControl>;
    /// Graceful shutdown: gives up the lease (status stays running) so that
    /// the next start takes the run at once. No-op when not held.
    async fn release_run(&self, run_id: &str, claim: &Claim) -> StoreResult<()>;

    /// A running, shared run whose lease another live process holds and
    /// which has work nobody holds (positions not handed out yet, or a
    /// chunk whose lease lapsed), passing over the runs in `executing`: a
    /// process with free slots helps execute it ([`RunStore::join_run`]).
    /// Fair between tenants: the run of the tenant holding the fewest live
    /// chunks (not done, lease not expired, any process's) per unit of its
    /// weight, then the oldest run. A run whose holder has not claimed its
    /// first chunk yet (still loading its plugins) is not offered.
    async fn run_to_help(
        &self,
        owner: &str,
        executing: &[String],
    ) -> StoreResult<Option<(String, Run)>>;
    /// A claim for `owner` to execute chunks of running run `run_id`
    /// without holding the run's lease (a helper): it increments the run's
    /// claim counter like every claim, so a later execution of the same
    /// owner is told apart. `Conflict` when the run is not running.
    async fn join_run(&self, tenant: &str, run_id: &str, owner: &str) -> StoreResult<Claim>;
    /// Says whether the run `claim` holds (its lease) is executed by that
    /// process alone (`exclusive`: no other claim gets a chunk of it, and
    /// [`RunStore::run_to_help`] passes it over) or shared. The lease
    /// holder sets it when it starts executing. `LeaseLost` when `claim`
    /// does not hold the run's lease.
    async fn set_run_exclusive(
        &self,
        run_id: &str,
        claim: &Claim,
        exclusive: bool,
    ) -> StoreResult<()>;
    /// Hands `claim` the next chunk of the run, under a lease of `lease`: a
    /// chunk whose holder's lease lapsed first (lowest position; never one
    /// `claim` itself held), else the next `size` positions from the run's
    /// cursor. An exclusive run gives chunks only to its lease holder
    /// (`Busy` to anyone else). Result writes of a helper are fenced by the
    /// chunks its claim holds (see [`ResultStore::write_results`]).
    async fn claim_chunk(
        &self,
        run_id: &str,
        claim: &Claim,
        size: i64,
        lease: Duration,
    ) -> StoreResult<ChunkGrant>;
    /// Marks the chunk starting at `first` done (every item in it has its
    /// result), and says whether that was the run's last (so that the lead
    /// of a run need not claim again only to hear it). `LeaseLost` when
    /// `claim` does not hold it.
    async fn finish_chunk(&self, run_id: &str, claim: &Claim, first: i64)
    -> StoreResult<ChunkDone>;
    /// Extends the lease of every unfinished chunk `claim` holds, and says
    /// whether the run was asked to cancel. `LeaseLost` when the run is no
    /// longer running (finished or cancelled by its lease holder). A chunk
    /// another claim took over is not reported here: the holder learns it
    /// from its next write or [`RunStore::finish_chunk`].
    async fn renew_chunks(
        &self,
        run_id: &str,
        claim: &Claim,
        lease: Duration,
    ) -> StoreResult<RunControl>;
    /// Gives up the unfinished chunks `claim` holds (their leases end now),
    /// so that another claim takes them at once. No-op when none.
    async fn release_chunks(&self, run_id: &str, claim: &Claim) -> StoreResult<()>;
    /// Items of the run's pinned version with no result in this run yet, by
    /// position, after `after_position`. In a run with repeats: the items
    /// with fewer results than trials ([`ResultStore::stored_trials`] says
    /// which trials they have).
    async fn pending_items(
        &self,
        tenant: &str,
        run_id: &str,
        after_position: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<DatasetItem>> {
        self.pending_items_in(tenant, run_id, after_position, None, limit)
            .await
    }
    /// Like [`RunStore::pending_items`], only below `end_position` when
    /// given (the items of one chunk of the run).
    async fn pending_items_in(
        &self,
        tenant: &str,
        run_id: &str,
        after_position: Option<i64>,
        end_position: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<DatasetItem>>;
    /// Finalizes a run `claim` holds: counts recomputed from the results,
    /// `skipped = total - succeeded - failed`, `completedAt`, lease cleared.
    /// `status` must be terminal. `Conflict` when already finished.
    async fn finish_run(
        &self,
        run_id: &str,
        claim: &Claim,
        status: RunStatus,
        error: Option<String>,
    ) -> StoreResult<Run>;
    /// Marks a pending or running run failed with `error` (setup failures;
    /// no lease needed). `Conflict` when already finished.
    async fn fail_run(&self, tenant: &str, run_id: &str, error: &str) -> StoreResult<Run>;
}

/// Results of runs, with their scores.
#[async_trait]
pub trait ResultStore: Send + Sync + 'static {
    /// Writes a batch of results with their scores in one transaction,
    /// fenced by `claim` (`LeaseLost`: nothing written): the claim holding
    /// the run's lease may write any item; any other claim (a process
    /// helping execute the run) only items in chunks it holds. Idempotent on
    /// `(run, item, trial)`: an already stored trial counts as a duplicate
    /// and keeps its scores; a trial outside the run's `0..repeats` is a
    /// `Validation` error (nothing written). Bumps the run's counters by
    /// what was inserted.
    async fn write_results(
        &self,
        run_id: &str,
        claim: &Claim,
        batch: Vec<NewResult>,
    ) -> StoreResult<WriteOutcome>;
    /// The trials of `item_ids` that have a result in run `run_id`, as
    /// `(item id, trial)` pairs in no particular order: with
    /// [`RunStore::pending_items`], what a run with repeats still has to do
    /// (an item is pending while one of its trials has no result).
    async fn stored_trials(
        &self,
        tenant: &str,
        run_id: &str,
        item_ids: &[&str],
    ) -> StoreResult<Vec<(String, i64)>>;
    /// Results in item index order (each item's trials in trial order),
    /// with their scores.
    async fn list_results(
        &self,
        tenant: &str,
        run_id: &str,
        page: Page,
    ) -> StoreResult<Paged<RunResult>>;
    /// [`ResultOutline`]s of the results written after sequence number
    /// `after_seq`, in write order, with their sequence numbers (for
    /// statistics over a whole run).
    async fn result_outlines_after_seq(
        &self,
        tenant: &str,
        run_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<(i64, ResultOutline)>>;
    /// What the target produced for the results of run `run_id` whose item
    /// index is in `[from_index, to_index]`, by item index (no scores): a
    /// re-scoring run reads its parent's outputs with it, one page of items
    /// at a time.
    async fn target_records(
        &self,
        tenant: &str,
        run_id: &str,
        from_index: i64,
        to_index: i64,
    ) -> StoreResult<Vec<TargetRecord>>;
    /// The models the run's target reported in its results' metadata
    /// (`targetMetadata.model`: what the server said answered, which may
    /// differ from the model asked for), with their result counts, by
    /// model name. Empty for targets that report none.
    async fn target_models(&self, tenant: &str, run_id: &str) -> StoreResult<Vec<ModelCount>>;
    /// [`ResultOutline`]s of up to `limit` results whose item index is
    /// above `after_index`, in item index order (for walking two runs side
    /// by side, e.g. to compare them, without holding either).
    async fn result_outlines_by_index(
        &self,
        tenant: &str,
        run_id: &str,
        after_index: i64,
        limit: i64,
    ) -> StoreResult<Vec<ResultOutline>>;
    /// The results whose item index is in `first..=last`, in item index
    /// order, with their scores.
    async fn results_in_index_range(
        &self,
        tenant: &str,
        run_id: &str,
        first: i64,
        last: i64,
    ) -> StoreResult<Vec<RunResult>>;
    /// The results `filter` lets through, in item index order, with their
    /// scores. Filtering happens in the database, so a page of the failures
    /// of a 100k-item run reads one page, not the run.
    async fn filter_results(
        &self,
        tenant: &str,
        run_id: &str,
        filter: &ResultFilter,
        page: Page,
    ) -> StoreResult<Paged<RunResult>>;
    /// Results written after sequence number `after_seq`, in write order,
    /// with their sequence numbers (for live streaming and resume).
    async fn results_after_seq(
        &self,
        tenant: &str,
        run_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<(i64, RunResult)>>;
}

/// Registered plugins and their component bytes.
#[async_trait]
pub trait PluginStore: Send + Sync + 'static {
    /// Registers (or replaces: same id) a plugin and its component bytes.
    async fn register_plugin(
        &self,
        tenant: &str,
        record: PluginRecord,
        bytes: Vec<u8>,
    ) -> StoreResult<PluginRecord>;
    async fn get_plugin(&self, tenant: &str, id: &str) -> StoreResult<PluginRecord>;
    /// The component bytes.
    async fn plugin_bytes(&self, tenant: &str, id: &str) -> StoreResult<Vec<u8>>;
    /// By id.
    async fn list_plugins(&self, tenant: &str, page: Page) -> StoreResult<Paged<PluginRecord>>;
    async fn delete_plugin(&self, tenant: &str, id: &str) -> StoreResult<()>;
}
