//! Items, their versions, and the items of a run still to do (SQLite).
//!
//! Most of it is the shared code in [`crate::shared::items`]; here stays
//! what SQLite does its own way: deleting a list of ids (`json_each`), the
//! search (`instr(lower(..))`, ASCII folding) and the filter of a version
//! written with `is_deleted = 0` (the partial index's expression).

use async_trait::async_trait;

use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::error::StoreResult;
use crate::models::*;
use crate::rows::{self, item_cols};
use crate::rules::{check_version, now, to_ms};
use crate::shared::Handle;
use crate::shared::datasets::{Lock, fetch, fetch_locked};
use crate::shared::items as shared;
use crate::store::ItemStore;

/// Filter of the items visible at a dataset version (binds: version twice).
pub(super) const AT_VERSION: &str =
    "iv.valid_from <= ? AND (iv.valid_to IS NULL OR iv.valid_to > ?) AND iv.is_deleted = 0";
/// Appends the search filter (see [`crate::shared::Db::push_search`]).
pub(super) fn push_search(qb: &mut QueryBuilder<Sqlite>, search: &str) {
    // SQLite's lower() folds ASCII only; the needle is folded the same way.
    let needle = search.to_ascii_lowercase();
    qb.push(" AND (instr(lower(iv.input), ")
        .push_bind(needle.clone())
        .push(") > 0 OR instr(lower(coalesce(iv.expected_output, '')), ")
        .push_bind(needle)
        .push(") > 0)");
}

#[async_trait]
impl ItemStore for SqliteStore {
    async fn add_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        items: Vec<NewItem>,
    ) -> StoreResult<Vec<DatasetItem>> {
        shared::add(self, tenant, dataset_id, items).await
    }

    async fn add_items_streamed(
        &self,
        tenant: &str,
        dataset_id: &str,
        feed: tokio::sync::mpsc::Receiver<ItemFeed>,
    ) -> StoreResult<StreamedItems> {
        shared::add_streamed(self, tenant, dataset_id, feed).await
    }

    async fn get_item(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
    ) -> StoreResult<DatasetItem> {
        shared::get(self, tenant, dataset_id, item_id).await
    }

    async fn update_item(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        patch: ItemPatch,
    ) -> StoreResult<DatasetItem> {
        shared::update(self, tenant, dataset_id, item_id, patch).await
    }

    async fn delete_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        ids: &[String],
    ) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let ds = fetch_locked(&mut *tx, tenant, dataset_id, Lock::Update).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let ids_json = serde_json::to_string(ids).expect("strings serialize");
        let version = ds.version + 1;
        let at = now();
        // Tombstones first (copies of the live rows), then close the live rows.
        sqlx::query(
            "INSERT INTO item_versions (item_id, version_number, dataset_id, position, valid_from, \
         is_deleted, input, expected_output, context, item_created_at, created_at) \
         SELECT item_id, version_number + 1, dataset_id, position, ?, 1, input, expected_output, \
         context, item_created_at, ? FROM item_versions \
         WHERE dataset_id = ? AND valid_to IS NULL AND is_deleted = 0 \
         AND item_id IN (SELECT value FROM json_each(?))",
        )
        .bind(version)
        .bind(to_ms(at))
        .bind(dataset_id)
        .bind(&ids_json)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query(
            "UPDATE item_versions SET valid_to = ? \
         WHERE dataset_id = ? AND valid_to IS NULL AND is_deleted = 0 \
         AND item_id IN (SELECT value FROM json_each(?))",
        )
        .bind(version)
        .bind(dataset_id)
        .bind(&ids_json)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        shared::finish_delete(tx, dataset_id, version, deleted, at).await
    }

    async fn list_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        query: ItemQuery,
    ) -> StoreResult<Paged<DatasetItem>> {
        shared::list(self, tenant, dataset_id, query).await
    }

    async fn items_at_version(
        &self,
        tenant: &str,
        dataset_id: &str,
        version: i64,
        after_position: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<DatasetItem>> {
        let ds = fetch(self.reads(), tenant, dataset_id).await?;
        check_version(&ds, version)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM item_versions iv WHERE iv.dataset_id = ? AND iv.position > ? AND {AT_VERSION} \
         ORDER BY iv.position LIMIT ?",
        item_cols!()
    )))
    .bind(dataset_id)
    .bind(after_position.unwrap_or(-1))
    .bind(version)
    .bind(version)
    .bind(limit.max(0))
    .fetch_all(&self.reader)
    .await?;
        rows.iter().map(rows::item).collect()
    }

    async fn count_items_at_version(
        &self,
        tenant: &str,
        dataset_id: &str,
        version: i64,
    ) -> StoreResult<i64> {
        shared::count_at_version(self, tenant, dataset_id, version).await
    }

    async fn list_item_versions(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        page: Page,
    ) -> StoreResult<Paged<ItemVersion>> {
        shared::list_versions(self, tenant, dataset_id, item_id, page).await
    }

    async fn get_item_version(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        version_number: i64,
    ) -> StoreResult<ItemVersion> {
        shared::get_version(self, tenant, dataset_id, item_id, version_number).await
    }
}
