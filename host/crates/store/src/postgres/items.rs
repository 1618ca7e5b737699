//! Items, their versions, and the items of a run still to do (PostgreSQL).
//!
//! Items are stored as SCD-2 rows in `item_versions`: the items of dataset
//! version V are the rows with `valid_from <= V < valid_to` (an open
//! `valid_to` is NULL) that are not tombstones.

use async_trait::async_trait;

use sqlx::{Executor, Postgres, QueryBuilder, Row};

use super::PostgresStore;
use super::datasets::{fetch as fetch_dataset, lock as lock_dataset, record_version};
use super::rows::{j, jo};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rows::{self, item_cols};
use crate::rules::{
    INSERT_CHUNK, apply_item_patch, change, check_item_limit, check_version, like_escape, new_id,
    now,
};
use crate::sql;
use crate::store::ItemStore;
use crate::tenancy::{check_stored_bytes, item_bytes};
use crate::validate::ItemValidator;

/// A bulk add of at least this many items refreshes the table statistics.
const ANALYZE_AFTER: usize = 5_000;

/// Up to `limit` live items after position `after` (for re-validation).
pub async fn live_page<'e, E>(
    ex: E,
    dataset_id: &str,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<DatasetItem>>
where
    E: Executor<'e, Database = Postgres>,
{
    let rows = sqlx::query(concat!(
        "SELECT ",
        item_cols!(),
        " FROM item_versions iv WHERE iv.dataset_id = $1 AND iv.position > $2 \
         AND iv.valid_to IS NULL AND NOT iv.is_deleted ORDER BY iv.position LIMIT $3"
    ))
    .bind(dataset_id)
    .bind(after)
    .bind(limit)
    .fetch_all(ex)
    .await?;
    rows.iter().map(rows::item).collect()
}

/// The live row of an item and its version number.
async fn live_item<'e, E>(ex: E, dataset_id: &str, item_id: &str) -> StoreResult<(DatasetItem, i64)>
where
    E: Executor<'e, Database = Postgres>,
{
    let row = sqlx::query(concat!(
        "SELECT ",
        item_cols!(),
        ", iv.version_number FROM item_versions iv WHERE iv.item_id = $1 AND iv.dataset_id = $2 \
         AND iv.valid_to IS NULL AND NOT iv.is_deleted"
    ))
    .bind(item_id)
    .bind(dataset_id)
    .fetch_optional(ex)
    .await?
    .ok_or_else(|| StoreError::not_found("Item", item_id))?;
    Ok((rows::item(&row)?, row.try_get("version_number")?))
}

/// Appends the filter of `query` (version or live, and search) to `qb`.
fn push_item_filter(qb: &mut QueryBuilder<Postgres>, dataset_id: &str, query: &ItemQuery) {
    qb.push(" FROM item_versions iv WHERE iv.dataset_id = ")
        .push_bind(dataset_id.to_string());
    match query.version {
        Some(v) => {
            qb.push(" AND iv.valid_from <= ")
                .push_bind(v)
                .push(" AND (iv.valid_to IS NULL OR iv.valid_to > ")
                .push_bind(v)
                .push(") AND NOT iv.is_deleted");
        }
        None => {
            qb.push(" AND iv.valid_to IS NULL AND NOT iv.is_deleted");
        }
    }
    if let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", like_escape(search));
        qb.push(" AND (iv.input::text ILIKE ")
            .push_bind(pattern.clone())
            .push(" OR COALESCE(iv.expected_output::text, '') ILIKE ")
            .push_bind(pattern)
            .push(")");
    }
}

/// Positions one query of [`scan_items`] covers at least.
const SCAN_WINDOW: i64 = 1000;

/// The items of `version` (without a result in `run`, if given) after
/// `after`, by position, up to `limit`.
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
    run: Option<&str>,
    after: Option<i64>,
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
    let limit = limit.max(0);
    let end: i64 = sqlx::query_scalar("SELECT next_position FROM datasets WHERE id = $1")
        .bind(dataset_id)
        .fetch_optional(&s.pool)
        .await?
        .unwrap_or(0);
    let mut after = after.unwrap_or(-1);
    let mut out: Vec<DatasetItem> = Vec::new();
    while (out.len() as i64) < limit && after < end - 1 {
        let upto = after.saturating_add(limit.max(SCAN_WINDOW));
        let query = sqlx::query(if run.is_some() { PENDING } else { ALL })
            .bind(dataset_id)
            .bind(after)
            .bind(upto)
            .bind(version)
            .bind(limit - out.len() as i64);
        let query = match run {
            Some(r) => query.bind(r),
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
        let mut tx = self.tx().await?;
        let ds = lock_dataset(&mut *tx, tenant, dataset_id).await?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        ItemValidator::new(ds.input_schema.as_ref(), ds.output_schema.as_ref())?
            .check_new_items(&items)?;
        let (max_items, next_position, max_bytes, stored): (i64, i64, i64, i64) =
            sqlx::query_as(sql::items::LIMITS_AND_NEXT_POSITION)
                .bind(dataset_id)
                .fetch_one(&mut *tx)
                .await?;
        check_item_limit(ds.item_count, items.len(), max_items)?;
        let adding: i64 = items
            .iter()
            .map(|it| item_bytes(&it.input, it.expected_output.as_ref(), it.context.as_ref()))
            .sum();
        check_stored_bytes(stored, adding, max_bytes)?;
        let version = ds.version + 1;
        let at = now();
        let added: Vec<DatasetItem> = items
            .into_iter()
            .enumerate()
            .map(|(i, it)| DatasetItem {
                id: new_id(),
                dataset_id: dataset_id.to_string(),
                version,
                position: next_position + i as i64,
                input: it.input,
                expected_output: it.expected_output,
                context: it.context,
                created_at: at,
                updated_at: at,
            })
            .collect();
        for chunk in added.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Postgres>::new(sql::items::INSERT_HEAD);
            qb.push_values(chunk, |mut b, it| {
                b.push_bind(&it.id)
                    .push_bind(1i64)
                    .push_bind(dataset_id)
                    .push_bind(it.position)
                    .push_bind(version)
                    .push_bind(false)
                    .push_bind(j(&it.input))
                    .push_bind(jo(it.expected_output.as_ref()))
                    .push_bind(jo(it.context.as_ref()))
                    .push_bind(at)
                    .push_bind(at);
            });
            qb.build().execute(&mut *tx).await?;
        }
        let n = added.len() as i64;
        sqlx::query(sql::items::BUMP_FOR_ADD)
            .bind(version)
            .bind(n)
            .bind(at)
            .bind(dataset_id)
            .bind(adding)
            .execute(&mut *tx)
            .await?;
        record_version(&mut *tx, dataset_id, version, change::ITEMS_ADD, at).await?;
        tx.commit().await?;
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

    async fn get_item(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
    ) -> StoreResult<DatasetItem> {
        fetch_dataset(&self.pool, tenant, dataset_id).await?;
        Ok(live_item(&self.pool, dataset_id, item_id).await?.0)
    }

    async fn update_item(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        patch: ItemPatch,
    ) -> StoreResult<DatasetItem> {
        let mut tx = self.tx().await?;
        let ds = lock_dataset(&mut *tx, tenant, dataset_id).await?;
        let (old, number) = live_item(&mut *tx, dataset_id, item_id).await?;
        let snap = apply_item_patch(&old, patch);
        ItemValidator::new(ds.input_schema.as_ref(), ds.output_schema.as_ref())?.check(
            "",
            &snap.input,
            snap.expected_output.as_ref(),
        )?;
        let version = ds.version + 1;
        let at = now();
        sqlx::query(sql::items::CLOSE)
            .bind(version)
            .bind(item_id)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO item_versions (item_id, version_number, dataset_id, position, valid_from, \
         is_deleted, input, expected_output, context, item_created_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, FALSE, $6, $7, $8, $9, $10)",
        )
        .bind(item_id)
        .bind(number + 1)
        .bind(dataset_id)
        .bind(old.position)
        .bind(version)
        .bind(j(&snap.input))
        .bind(jo(snap.expected_output.as_ref()))
        .bind(jo(snap.context.as_ref()))
        .bind(old.created_at)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(sql::items::BUMP_FOR_UPDATE)
            .bind(version)
            .bind(at)
            .bind(dataset_id)
            .bind(item_bytes(
                &snap.input,
                snap.expected_output.as_ref(),
                snap.context.as_ref(),
            ))
            .execute(&mut *tx)
            .await?;
        record_version(&mut *tx, dataset_id, version, change::ITEMS_UPDATE, at).await?;
        tx.commit().await?;
        Ok(DatasetItem {
            version,
            input: snap.input,
            expected_output: snap.expected_output,
            context: snap.context,
            updated_at: at,
            ..old
        })
    }

    async fn delete_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        ids: &[String],
    ) -> StoreResult<u64> {
        let mut tx = self.tx().await?;
        let ds = lock_dataset(&mut *tx, tenant, dataset_id).await?;
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
        if deleted == 0 {
            return Ok(0);
        }
        sqlx::query(sql::items::BUMP_FOR_DELETE)
            .bind(version)
            .bind(deleted as i64)
            .bind(at)
            .bind(dataset_id)
            .execute(&mut *tx)
            .await?;
        record_version(&mut *tx, dataset_id, version, change::ITEMS_DELETE, at).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn list_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        query: ItemQuery,
    ) -> StoreResult<Paged<DatasetItem>> {
        let ds = fetch_dataset(&self.pool, tenant, dataset_id).await?;
        if let Some(v) = query.version {
            check_version(&ds, v)?;
        }
        let mut count = QueryBuilder::<Postgres>::new("SELECT COUNT(*)");
        push_item_filter(&mut count, dataset_id, &query);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut qb = QueryBuilder::<Postgres>::new(concat!("SELECT ", item_cols!()));
        push_item_filter(&mut qb, dataset_id, &query);
        qb.push(" ORDER BY iv.position LIMIT ")
            .push_bind(query.page.limit())
            .push(" OFFSET ")
            .push_bind(query.page.offset());
        let rows = qb.build().fetch_all(&self.pool).await?;
        let items = rows.iter().map(rows::item).collect::<StoreResult<_>>()?;
        Ok(query.page.wrap(items, total))
    }

    async fn items_at_version(
        &self,
        tenant: &str,
        dataset_id: &str,
        version: i64,
        after_position: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<DatasetItem>> {
        let ds = fetch_dataset(&self.pool, tenant, dataset_id).await?;
        check_version(&ds, version)?;
        scan_items(self, dataset_id, version, None, after_position, limit).await
    }

    async fn count_items_at_version(
        &self,
        tenant: &str,
        dataset_id: &str,
        version: i64,
    ) -> StoreResult<i64> {
        let ds = fetch_dataset(&self.pool, tenant, dataset_id).await?;
        check_version(&ds, version)?;
        if version == ds.version {
            return Ok(ds.item_count);
        }
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM item_versions iv WHERE iv.dataset_id = $1 \
         AND iv.valid_from <= $2 AND (iv.valid_to IS NULL OR iv.valid_to > $2) \
         AND NOT iv.is_deleted",
        )
        .bind(dataset_id)
        .bind(version)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    async fn list_item_versions(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        page: Page,
    ) -> StoreResult<Paged<ItemVersion>> {
        fetch_dataset(&self.pool, tenant, dataset_id).await?;
        let total: i64 = sqlx::query_scalar(sql::items::COUNT_VERSIONS)
            .bind(item_id)
            .bind(dataset_id)
            .fetch_one(&self.pool)
            .await?;
        if total == 0 {
            return Err(StoreError::not_found("Item", item_id));
        }
        let rows = sqlx::query(sql::items::LIST_VERSIONS)
            .bind(item_id)
            .bind(dataset_id)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(rows::item_version)
            .collect::<StoreResult<_>>()?;
        Ok(page.wrap(items, total))
    }

    async fn get_item_version(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        version_number: i64,
    ) -> StoreResult<ItemVersion> {
        fetch_dataset(&self.pool, tenant, dataset_id).await?;
        let row = sqlx::query(sql::items::GET_VERSION)
            .bind(item_id)
            .bind(dataset_id)
            .bind(version_number)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                StoreError::not_found("Item version", format!("{item_id}@{version_number}"))
            })?;
        rows::item_version(&row)
    }
}
