//! Items, their versions, and the items of a run still to do (PostgreSQL).
//!
//! Most of it is the shared code in [`crate::shared::items`]; here stays
//! what PostgreSQL does its own way: deleting a list of ids (`= ANY`), the
//! search (`ILIKE` on `jsonb`'s text), paging the items of a version through
//! bounded position windows, and `ANALYZE` after a bulk add.

use async_trait::async_trait;

use sqlx::{Postgres, QueryBuilder};

use super::PostgresStore;
use crate::error::StoreResult;
use crate::models::*;
use crate::rows::{self, item_cols};
use crate::rules::{check_version, like_escape, now};
use crate::shared::Handle;
use crate::shared::datasets::{Lock, fetch, fetch_locked};
use crate::shared::items as shared;
use crate::store::ItemStore;

/// A bulk add of at least this many items refreshes the table statistics.
const ANALYZE_AFTER: usize = 5_000;

/// Appends the search filter (see [`crate::shared::Db::push_search`]).
pub(super) fn push_search(qb: &mut QueryBuilder<Postgres>, search: &str) {
    let pattern = format!("%{}%", like_escape(search));
    qb.push(" AND (iv.input::text ILIKE ")
        .push_bind(pattern.clone())
        .push(" OR COALESCE(iv.expected_output::text, '') ILIKE ")
        .push_bind(pattern)
        .push(")");
}

/// Positions one query of [`scan_items`] covers at least.
const SCAN_WINDOW: i64 = 1000;

/// The items of `version` (without a result in `run`, if given: `(run id,
/// repeats)`; with repeats, with fewer results than trials) after `after`,
/// by position, up to `limit`.
///
/// The scan goes through bounded position windows and checks results with a
/// per-row index probe (`OFFSET 0` keeps the `NOT EXISTS` a subplan): each
/// query then costs O(window) whatever the table statistics say. With stale
/// statistics (a freshly filled table) PostgreSQL would otherwise sort every
/// remaining item per page, or rescan all of the run's results per item.
pub(super) async fn scan_items(
    s: &PostgresStore,
    dataset_id: &str,
    version: i64,
    run: Option<(&str, i64)>,
    after: Option<i64>,
    end: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<DatasetItem>> {
    const ALL: &str = concat!(
        "SELECT ",
        item_cols!(),
        " FROM item_versions iv WHERE iv.dataset_id = $1 AND iv.position > $2 \
         AND iv.position <= $3 AND iv.valid_from <= $4 \
         AND (iv.valid_to IS NULL OR iv.valid_to > $4) AND NOT iv.is_deleted \
         ORDER BY iv.position LIMIT $5"
    );
    const PENDING: &str = concat!(
        "SELECT ",
        item_cols!(),
        " FROM item_versions iv WHERE iv.dataset_id = $1 AND iv.position > $2 \
         AND iv.position <= $3 AND iv.valid_from <= $4 \
         AND (iv.valid_to IS NULL OR iv.valid_to > $4) AND NOT iv.is_deleted \
         AND NOT EXISTS (SELECT 1 FROM results r \
             WHERE r.run_id = $6 AND r.item_id = iv.item_id OFFSET 0) \
         ORDER BY iv.position LIMIT $5"
    );
    const PENDING_TRIALS: &str = concat!(
        "SELECT ",
        item_cols!(),
        " FROM item_versions iv WHERE iv.dataset_id = $1 AND iv.position > $2 \
         AND iv.position <= $3 AND iv.valid_from <= $4 \
         AND (iv.valid_to IS NULL OR iv.valid_to > $4) AND NOT iv.is_deleted \
         AND (SELECT COUNT(*) FROM results r \
             WHERE r.run_id = $6 AND r.item_id = iv.item_id OFFSET 0) < $7 \
         ORDER BY iv.position LIMIT $5"
    );
    let limit = limit.max(0);
    let next: i64 = sqlx::query_scalar("SELECT next_position FROM datasets WHERE id = $1")
        .bind(dataset_id)
        .fetch_optional(&s.pool)
        .await?
        .unwrap_or(0);
    let end = end.map_or(next, |end| end.min(next));
    let mut after = after.unwrap_or(-1);
    let mut out: Vec<DatasetItem> = Vec::new();
    while (out.len() as i64) < limit && after < end - 1 {
        let upto = after.saturating_add(limit.max(SCAN_WINDOW)).min(end - 1);
        let sql = match run {
            None => ALL,
            Some((_, 1)) => PENDING,
            Some(_) => PENDING_TRIALS,
        };
        let query = sqlx::query(sql)
            .bind(dataset_id)
            .bind(after)
            .bind(upto)
            .bind(version)
            .bind(limit - out.len() as i64);
        let query = match run {
            Some((r, 1)) => query.bind(r),
            Some((r, repeats)) => query.bind(r).bind(repeats),
            None => query,
        };
        for row in query.fetch_all(&s.pool).await? {
            out.push(rows::item(&row)?);
        }
        after = upto;
    }
    Ok(out)
}

#[async_trait]
impl ItemStore for PostgresStore {
    async fn add_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        items: Vec<NewItem>,
    ) -> StoreResult<Vec<DatasetItem>> {
        let added = shared::add(self, tenant, dataset_id, items).await?;
        if added.len() >= ANALYZE_AFTER {
            // Fresh statistics, so that paging the items in position order uses
            // the index at once instead of sorting what the stale statistics
            // call a small table (autovacuum would analyze only a minute later).
            if let Err(e) = sqlx::query("ANALYZE item_versions")
                .execute(&self.pool)
                .await
            {
                tracing::warn!(error = %e, "ANALYZE item_versions failed");
            }
        }
        Ok(added)
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
        let mut tx = self.tx().await?;
        let ds = fetch_locked(&mut *tx, tenant, dataset_id, Lock::Update).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let version = ds.version + 1;
        let at = now();
        // Tombstones first (copies of the live rows), then close the live rows.
        sqlx::query(
            "INSERT INTO item_versions (item_id, version_number, dataset_id, position, valid_from, \
         is_deleted, input, expected_output, context, item_created_at, created_at) \
         SELECT item_id, version_number + 1, dataset_id, position, $1, TRUE, input, \
         expected_output, context, item_created_at, $2 FROM item_versions \
         WHERE dataset_id = $3 AND valid_to IS NULL AND NOT is_deleted AND item_id = ANY($4)",
        )
        .bind(version)
        .bind(at)
        .bind(dataset_id)
        .bind(ids)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query(
            "UPDATE item_versions SET valid_to = $1 \
         WHERE dataset_id = $2 AND valid_to IS NULL AND NOT is_deleted AND item_id = ANY($3)",
        )
        .bind(version)
        .bind(dataset_id)
        .bind(ids)
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
        scan_items(self, dataset_id, version, None, after_position, None, limit).await
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
