//! The SQLite backend: one file in WAL mode (or an in-memory database).
//!
//! Writes go through a pool of exactly one connection and start with
//! `BEGIN IMMEDIATE`, so a write transaction takes SQLite's write lock up
//! front (no deadlock when a read transaction would later upgrade) and waits
//! up to `busy_timeout` for another process sharing the file. Reads use a
//! separate pool; WAL lets them run while the writer works.

mod datasets;
mod items;
mod keys;
mod plugins;
mod results;
mod rows;
mod runs;
mod tenancy;
mod tenants;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::store::Store;

/// How long a statement waits for a lock held by another connection or
/// process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections for a file database.
const READ_POOL_SIZE: u32 = 4;

/// The SQLite implementation of [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (`sqlite://path?mode=rwc` creates the file) or creates
    /// (`sqlite::memory:`) a database and applies the migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let mut opts = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let in_memory = is_in_memory(url);
        // Zero set-up: without an explicit `mode=`, a file database and its
        // directory are created on first use.
        if !in_memory && !url.contains("mode=") {
            opts = opts.create_if_missing(true);
            if let Some(parent) = opts.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Config(format!(
                        "cannot create the directory {}: {e}",
                        parent.display()
                    ))
                })?;
            }
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // An in-memory database lives as long as one connection to it.
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("../../../migrations/sqlite")
            .run(&writer)
            .await?;
        // An in-memory database cannot be shared safely between connections
        // (shared-cache table locks are not covered by busy_timeout): read
        // through the single writer connection too.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READ_POOL_SIZE)
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(opts)
                .await?
        };
        Ok(Self { writer, reader })
    }

    /// A write transaction holding SQLite's write lock.
    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn get_tenant(&self, id: &str) -> StoreResult<Tenant> {
        tenants::get_tenant(self, id).await
    }
    async fn upsert_tenant(&self, tenant: &Tenant) -> StoreResult<Tenant> {
        tenants::upsert_tenant(self, tenant).await
    }

    async fn create_dataset(&self, tenant: &str, new: NewDataset) -> StoreResult<Dataset> {
        datasets::create_dataset(self, tenant, new).await
    }
    async fn get_dataset(&self, tenant: &str, id: &str) -> StoreResult<Dataset> {
        datasets::get_dataset(self, tenant, id).await
    }
    async fn find_dataset_by_name(&self, tenant: &str, name: &str) -> StoreResult<Option<Dataset>> {
        datasets::find_dataset_by_name(self, tenant, name).await
    }
    async fn list_datasets(&self, tenant: &str, page: Page) -> StoreResult<Paged<Dataset>> {
        datasets::list_datasets(self, tenant, page).await
    }
    async fn update_dataset(
        &self,
        tenant: &str,
        id: &str,
        patch: DatasetPatch,
    ) -> StoreResult<Dataset> {
        datasets::update_dataset(self, tenant, id, patch).await
    }
    async fn delete_dataset(&self, tenant: &str, id: &str) -> StoreResult<()> {
        datasets::delete_dataset(self, tenant, id).await
    }

    async fn add_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        items: Vec<NewItem>,
    ) -> StoreResult<Vec<DatasetItem>> {
        items::add_items(self, tenant, dataset_id, items).await
    }
    async fn get_item(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
    ) -> StoreResult<DatasetItem> {
        items::get_item(self, tenant, dataset_id, item_id).await
    }
    async fn update_item(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        patch: ItemPatch,
    ) -> StoreResult<DatasetItem> {
        items::update_item(self, tenant, dataset_id, item_id, patch).await
    }
    async fn delete_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        ids: &[String],
    ) -> StoreResult<u64> {
        items::delete_items(self, tenant, dataset_id, ids).await
    }
    async fn list_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        query: ItemQuery,
    ) -> StoreResult<Paged<DatasetItem>> {
        items::list_items(self, tenant, dataset_id, query).await
    }
    async fn items_at_version(
        &self,
        tenant: &str,
        dataset_id: &str,
        version: i64,
        after_position: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<DatasetItem>> {
        items::items_at_version(self, tenant, dataset_id, version, after_position, limit).await
    }
    async fn count_items_at_version(
        &self,
        tenant: &str,
        dataset_id: &str,
        version: i64,
    ) -> StoreResult<i64> {
        items::count_items_at_version(self, tenant, dataset_id, version).await
    }
    async fn list_dataset_versions(
        &self,
        tenant: &str,
        dataset_id: &str,
        page: Page,
    ) -> StoreResult<Paged<DatasetVersion>> {
        datasets::list_dataset_versions(self, tenant, dataset_id, page).await
    }
    async fn list_item_versions(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        page: Page,
    ) -> StoreResult<Paged<ItemVersion>> {
        items::list_item_versions(self, tenant, dataset_id, item_id, page).await
    }
    async fn get_item_version(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        version_number: i64,
    ) -> StoreResult<ItemVersion> {
        items::get_item_version(self, tenant, dataset_id, item_id, version_number).await
    }

    async fn create_run(&self, tenant: &str, new: NewRun) -> StoreResult<Run> {
        runs::create_run(self, tenant, new).await
    }
    async fn get_run(&self, tenant: &str, id: &str) -> StoreResult<Run> {
        runs::get_run(self, tenant, id).await
    }
    async fn list_runs(
        &self,
        tenant: &str,
        dataset_id: Option<&str>,
        page: Page,
    ) -> StoreResult<Paged<Run>> {
        runs::list_runs(self, tenant, dataset_id, page).await
    }
    async fn delete_run(&self, tenant: &str, id: &str) -> StoreResult<()> {
        runs::delete_run(self, tenant, id).await
    }
    async fn request_cancel(&self, tenant: &str, id: &str) -> StoreResult<Run> {
        runs::request_cancel(self, tenant, id).await
    }

    async fn claim_next_run(
        &self,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<Option<(String, Run)>> {
        runs::claim_next_run(self, owner, lease).await
    }
    async fn claim_run(
        &self,
        tenant: &str,
        run_id: &str,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<Run> {
        runs::claim_run(self, tenant, run_id, owner, lease).await
    }
    async fn renew_lease(
        &self,
        run_id: &str,
        owner: &str,
        lease: Duration,
    ) -> StoreResult<RunControl> {
        runs::renew_lease(self, run_id, owner, lease).await
    }
    async fn release_run(&self, run_id: &str, owner: &str) -> StoreResult<()> {
        runs::release_run(self, run_id, owner).await
    }
    async fn pending_items(
        &self,
        tenant: &str,
        run_id: &str,
        after_position: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<DatasetItem>> {
        items::pending_items(self, tenant, run_id, after_position, limit).await
    }
    async fn write_results(
        &self,
        run_id: &str,
        owner: &str,
        batch: Vec<NewResult>,
    ) -> StoreResult<WriteOutcome> {
        results::write_results(self, run_id, owner, batch).await
    }
    async fn finish_run(
        &self,
        run_id: &str,
        owner: &str,
        status: RunStatus,
        error: Option<String>,
    ) -> StoreResult<Run> {
        runs::finish_run(self, run_id, owner, status, error).await
    }
    async fn fail_run(&self, tenant: &str, run_id: &str, error: &str) -> StoreResult<Run> {
        runs::fail_run(self, tenant, run_id, error).await
    }
    async fn list_results(
        &self,
        tenant: &str,
        run_id: &str,
        page: Page,
    ) -> StoreResult<Paged<RunResult>> {
        results::list_results(self, tenant, run_id, page).await
    }
    async fn results_after_seq(
        &self,
        tenant: &str,
        run_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<(i64, RunResult)>> {
        results::results_after_seq(self, tenant, run_id, after_seq, limit).await
    }

    async fn register_plugin(
        &self,
        tenant: &str,
        record: PluginRecord,
        bytes: Vec<u8>,
    ) -> StoreResult<PluginRecord> {
        plugins::register_plugin(self, tenant, record, bytes).await
    }
    async fn get_plugin(&self, tenant: &str, id: &str) -> StoreResult<PluginRecord> {
        plugins::get_plugin(self, tenant, id).await
    }
    async fn plugin_bytes(&self, tenant: &str, id: &str) -> StoreResult<Vec<u8>> {
        plugins::plugin_bytes(self, tenant, id).await
    }
    async fn list_plugins(&self, tenant: &str, page: Page) -> StoreResult<Paged<PluginRecord>> {
        plugins::list_plugins(self, tenant, page).await
    }
    async fn delete_plugin(&self, tenant: &str, id: &str) -> StoreResult<()> {
        plugins::delete_plugin(self, tenant, id).await
    }
}
