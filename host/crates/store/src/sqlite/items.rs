//! Items, their versions, and the items of a run still to do (SQLite).
//!
//! Items are stored as SCD-2 rows in `item_versions`: the items of dataset
//! version V are the rows with `valid_from <= V < valid_to` (an open
//! `valid_to` is NULL) that are not tombstones.

use async_trait::async_trait;

use sqlx::{Executor, QueryBuilder, Sqlite};

use super::SqliteStore;
use super::datasets::{fetch as fetch_dataset, record_version};
use super::rows::{to_json, to_json_opt};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rows::{self, item_cols};
use crate::rules::{
    INSERT_CHUNK, apply_item_patch, change, check_item_limit, check_version, new_id, now, to_ms,
};
use crate::sql;
use crate::store::ItemStore;
use crate::tenancy::{check_stored_bytes, item_bytes};
use crate::validate::ItemValidator;

/// Filter of the items visible at a dataset version (binds: version twice).
pub(super) const AT_VERSION: &str =
    "iv.valid_from <= ? AND (iv.valid_to IS NULL OR iv.valid_to > ?) AND iv.is_deleted = 0";
/// Filter of the live items.
const LIVE: &str = "iv.valid_to IS NULL AND iv.is_deleted = 0";

/// Up to `limit` live items after position `after` (for re-validation).
pub async fn live_page<'e, E>(
    ex: E,
    dataset_id: &str,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<DatasetItem>>
where
    E: Executor<'e, Database = Sqlite>,
{
    let rows = sqlx::query(concat!(
        "SELECT ",
        item_cols!(),
        " FROM item_versions iv WHERE iv.dataset_id = ? AND iv.position > ? \
         AND iv.valid_to IS NULL AND iv.is_deleted = 0 ORDER BY iv.position LIMIT ?"
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
    E: Executor<'e, Database = Sqlite>,
{
    let row = sqlx::query(concat!(
        "SELECT ",
        item_cols!(),
        ", iv.version_number FROM item_versions iv WHERE iv.item_id = ? AND iv.dataset_id = ? \
         AND iv.valid_to IS NULL AND iv.is_deleted = 0"
    ))
    .bind(item_id)
    .bind(dataset_id)
    .fetch_optional(ex)
    .await?
    .ok_or_else(|| StoreError::not_found("Item", item_id))?;
    use sqlx::Row;
    Ok((rows::item(&row)?, row.try_get("version_number")?))
}

/// Appends the filter of `query` (version or live, and search) to `qb`.
fn push_item_filter(qb: &mut QueryBuilder<Sqlite>, dataset_id: &str, query: &ItemQuery) {
    qb.push(" FROM item_versions iv WHERE iv.dataset_id = ")
        .push_bind(dataset_id.to_string());
    match query.version {
        Some(v) => {
            qb.push(" AND iv.valid_from <= ")
                .push_bind(v)
                .push(" AND (iv.valid_to IS NULL OR iv.valid_to > ")
                .push_bind(v)
                .push(") AND iv.is_deleted = 0");
        }
        None => {
            qb.push(" AND ").push(LIVE);
        }
    }
    if let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) {
        // SQLite's lower() folds ASCII only; the needle is folded the same way.
        let needle = search.to_ascii_lowercase();
        qb.push(" AND (instr(lower(iv.input), ")
            .push_bind(needle.clone())
            .push(") > 0 OR instr(lower(coalesce(iv.expected_output, '')), ")
            .push_bind(needle)
            .push(") > 0)");
    }
}

#[async_trait]
impl ItemStore for SqliteStore {
    async fn add_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        items: Vec<NewItem>,
    ) -> StoreResult<Vec<DatasetItem>> {
        let mut tx = self.write_tx().await?;
        let ds = fetch_dataset(&mut *tx, tenant, dataset_id).await?;
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
        let at_ms = to_ms(at);
        for chunk in added.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(sql::items::INSERT_HEAD);
            qb.push_values(chunk, |mut b, it| {
                b.push_bind(&it.id)
                    .push_bind(1i64)
                    .push_bind(dataset_id)
                    .push_bind(it.position)
                    .push_bind(version)
                    .push_bind(0i64)
                    .push_bind(to_json(&it.input))
                    .push_bind(to_json_opt(it.expected_output.as_ref()))
                    .push_bind(to_json_opt(it.context.as_ref()))
                    .push_bind(at_ms)
                    .push_bind(at_ms);
            });
            qb.build().execute(&mut *tx).await?;
        }
        let n = added.len() as i64;
        sqlx::query(sql::items::BUMP_FOR_ADD)
            .bind(version)
            .bind(n)
            .bind(at_ms)
            .bind(dataset_id)
            .bind(adding)
            .execute(&mut *tx)
            .await?;
        record_version(&mut *tx, dataset_id, version, change::ITEMS_ADD, at_ms).await?;
        tx.commit().await?;
        Ok(added)
    }

    async fn get_item(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
    ) -> StoreResult<DatasetItem> {
        fetch_dataset(&self.reader, tenant, dataset_id).await?;
        Ok(live_item(&self.reader, dataset_id, item_id).await?.0)
    }

    async fn update_item(
        &self,
        tenant: &str,
        dataset_id: &str,
        item_id: &str,
        patch: ItemPatch,
    ) -> StoreResult<DatasetItem> {
        let mut tx = self.write_tx().await?;
        let ds = fetch_dataset(&mut *tx, tenant, dataset_id).await?;
        let (old, number) = live_item(&mut *tx, dataset_id, item_id).await?;
        let snap = apply_item_patch(&old, patch);
        ItemValidator::new(ds.input_schema.as_ref(), ds.output_schema.as_ref())?.check(
            "",
            &snap.input,
            snap.expected_output.as_ref(),
        )?;
        let version = ds.version + 1;
        let at = now();
        let at_ms = to_ms(at);
        sqlx::query(sql::items::CLOSE)
            .bind(version)
            .bind(item_id)
            .bind(number)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO item_versions (item_id, version_number, dataset_id, position, valid_from, \
         is_deleted, input, expected_output, context, item_created_at, created_at) \
         VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
        )
        .bind(item_id)
        .bind(number + 1)
        .bind(dataset_id)
        .bind(old.position)
        .bind(version)
        .bind(to_json(&snap.input))
        .bind(to_json_opt(snap.expected_output.as_ref()))
        .bind(to_json_opt(snap.context.as_ref()))
        .bind(to_ms(old.created_at))
        .bind(at_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(sql::items::BUMP_FOR_UPDATE)
            .bind(version)
            .bind(at_ms)
            .bind(dataset_id)
            .bind(item_bytes(
                &snap.input,
                snap.expected_output.as_ref(),
                snap.context.as_ref(),
            ))
            .execute(&mut *tx)
            .await?;
        record_version(&mut *tx, dataset_id, version, change::ITEMS_UPDATE, at_ms).await?;
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
        let mut tx = self.write_tx().await?;
        let ds = fetch_dataset(&mut *tx, tenant, dataset_id).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let ids_json = serde_json::to_string(ids).expect("strings serialize");
        let version = ds.version + 1;
        let at_ms = to_ms(now());
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
        .bind(at_ms)
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
        if deleted == 0 {
            return Ok(0);
        }
        sqlx::query(sql::items::BUMP_FOR_DELETE)
            .bind(version)
            .bind(deleted as i64)
            .bind(at_ms)
            .bind(dataset_id)
            .execute(&mut *tx)
            .await?;
        record_version(&mut *tx, dataset_id, version, change::ITEMS_DELETE, at_ms).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn list_items(
        &self,
        tenant: &str,
        dataset_id: &str,
        query: ItemQuery,
    ) -> StoreResult<Paged<DatasetItem>> {
        let ds = fetch_dataset(&self.reader, tenant, dataset_id).await?;
        if let Some(v) = query.version {
            check_version(&ds, v)?;
        }
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*)");
        push_item_filter(&mut count, dataset_id, &query);
        let total: i64 = count.build_query_scalar().fetch_one(&self.reader).await?;
        let mut qb = QueryBuilder::<Sqlite>::new(concat!("SELECT ", item_cols!()));
        push_item_filter(&mut qb, dataset_id, &query);
        qb.push(" ORDER BY iv.position LIMIT ")
            .push_bind(query.page.limit())
            .push(" OFFSET ")
            .push_bind(query.page.offset());
        let rows = qb.build().fetch_all(&self.reader).await?;
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
        let ds = fetch_dataset(&self.reader, tenant, dataset_id).await?;
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
        let ds = fetch_dataset(&self.reader, tenant, dataset_id).await?;
        check_version(&ds, version)?;
        if version == ds.version {
            return Ok(ds.item_count);
        }
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM item_versions iv WHERE iv.dataset_id = ? AND {AT_VERSION}"
        )))
        .bind(dataset_id)
        .bind(version)
        .bind(version)
        .fetch_one(&self.reader)
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
        fetch_dataset(&self.reader, tenant, dataset_id).await?;
        let total: i64 = sqlx::query_scalar(sql::items::COUNT_VERSIONS)
            .bind(item_id)
            .bind(dataset_id)
            .fetch_one(&self.reader)
            .await?;
        if total == 0 {
            return Err(StoreError::not_found("Item", item_id));
        }
        let rows = sqlx::query(sql::items::LIST_VERSIONS)
            .bind(item_id)
            .bind(dataset_id)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&self.reader)
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
        fetch_dataset(&self.reader, tenant, dataset_id).await?;
        let row = sqlx::query(sql::items::GET_VERSION)
            .bind(item_id)
            .bind(dataset_id)
            .bind(version_number)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| {
                StoreError::not_found("Item version", format!("{item_id}@{version_number}"))
            })?;
        rows::item_version(&row)
    }
}
