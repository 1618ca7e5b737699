//! Items and their versions, on any backend.
//!
//! Items are stored as SCD-2 rows in `item_versions`: the items of dataset
//! version V are the rows with `valid_from <= V < valid_to` (an open
//! `valid_to` is NULL) that are not tombstones. What stays per backend:
//! deleting a list of ids (`json_each` vs `ANY`), paging the items of a
//! version (PostgreSQL scans bounded position windows), and the search
//! ([`Db::push_search`]).

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, QueryBuilder, Type};

use super::datasets::{Lock, fetch, fetch_locked, record_version};
use super::{Db, Handle, with_not_deleted};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rows::{self, StoredRow, item_cols};
use crate::rules::{
    INSERT_CHUNK, apply_item_patch, change, check_item_limit, check_version, new_id, now,
};
use crate::sql;
use crate::tenancy::{check_stored_bytes, item_bytes};
use crate::validate::ItemValidator;

/// Up to `limit` live items after position `after` (for re-validation).
pub(crate) async fn live_page<'e, DB, E>(
    ex: E,
    dataset_id: &str,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<DatasetItem>>
where
    DB: Db,
    E: Executor<'e, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let rows = sqlx::query(with_not_deleted::<DB>(sql::items::LIVE_PAGE))
        .bind(dataset_id)
        .bind(after)
        .bind(limit)
        .fetch_all(ex)
        .await?;
    rows.iter().map(rows::item).collect()
}

/// The live row of an item and its version number.
async fn live_item<'e, DB, E>(
    ex: E,
    dataset_id: &str,
    item_id: &str,
) -> StoreResult<(DatasetItem, i64)>
where
    DB: Db,
    E: Executor<'e, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let row = sqlx::query(with_not_deleted::<DB>(sql::items::LIVE_ITEM))
        .bind(item_id)
        .bind(dataset_id)
        .fetch_optional(ex)
        .await?
        .ok_or_else(|| StoreError::not_found("Item", item_id))?;
    Ok((rows::item(&row)?, row.int("version_number")?))
}

/// Validates `items`, checks the tenant's limits, inserts them in chunks
/// (one multi-row `INSERT` each) with one version bump, and commits.
pub(crate) async fn add<DB, S>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    items: Vec<NewItem>,
) -> StoreResult<Vec<DatasetItem>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
    bool: for<'t> Encode<'t, DB> + Type<DB>,
{
    let mut tx = s.begin_write().await?;
    let ds = fetch_locked(&mut *tx, tenant, dataset_id, Lock::Update).await?;
    if items.is_empty() {
        return Ok(Vec::new());
    }
    ItemValidator::new(ds.input_schema.as_ref(), ds.output_schema.as_ref())?
        .check_new_items(&items)?;
    let limits = sqlx::query(sql::items::LIMITS_AND_NEXT_POSITION)
        .bind(dataset_id)
        .fetch_one(&mut *tx)
        .await?;
    let (max_items, next_position, max_bytes, stored) = (
        limits.int_at(0)?,
        limits.int_at(1)?,
        limits.int_at(2)?,
        limits.int_at(3)?,
    );
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
        let mut qb = QueryBuilder::<DB>::new(sql::items::INSERT_HEAD);
        qb.push_values(chunk, |mut b, it| {
            b.push_bind(it.id.as_str())
                .push_bind(1i64)
                .push_bind(dataset_id)
                .push_bind(it.position)
                .push_bind(version)
                .push_bind(false)
                .push_bind(DB::json(&it.input))
                .push_bind(DB::json_opt(it.expected_output.as_ref()))
                .push_bind(DB::json_opt(it.context.as_ref()))
                .push_bind(DB::time(at))
                .push_bind(DB::time(at));
        });
        qb.build().execute(&mut *tx).await?;
    }
    sqlx::query(sql::items::BUMP_FOR_ADD)
        .bind(version)
        .bind(added.len() as i64)
        .bind(DB::time(at))
        .bind(dataset_id)
        .bind(adding)
        .execute(&mut *tx)
        .await?;
    record_version(
        &mut *tx,
        dataset_id,
        version,
        change::ITEMS_ADD,
        DB::time(at),
    )
    .await?;
    tx.commit().await?;
    Ok(added)
}

pub(crate) async fn get<DB, S>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    item_id: &str,
) -> StoreResult<DatasetItem>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    fetch(s.reads(), tenant, dataset_id).await?;
    Ok(live_item(s.reads(), dataset_id, item_id).await?.0)
}

pub(crate) async fn update<DB, S>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    item_id: &str,
    patch: ItemPatch,
) -> StoreResult<DatasetItem>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
    bool: for<'t> Encode<'t, DB> + Type<DB>,
{
    let mut tx = s.begin_write().await?;
    let ds = fetch_locked(&mut *tx, tenant, dataset_id, Lock::Update).await?;
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
    sqlx::query(sql::items::INSERT_ONE)
        .bind(item_id)
        .bind(number + 1)
        .bind(dataset_id)
        .bind(old.position)
        .bind(version)
        .bind(false)
        .bind(DB::json(&snap.input))
        .bind(DB::json_opt(snap.expected_output.as_ref()))
        .bind(DB::json_opt(snap.context.as_ref()))
        .bind(DB::time(old.created_at))
        .bind(DB::time(at))
        .execute(&mut *tx)
        .await?;
    sqlx::query(sql::items::BUMP_FOR_UPDATE)
        .bind(version)
        .bind(DB::time(at))
        .bind(dataset_id)
        .bind(item_bytes(
            &snap.input,
            snap.expected_output.as_ref(),
            snap.context.as_ref(),
        ))
        .execute(&mut *tx)
        .await?;
    record_version(
        &mut *tx,
        dataset_id,
        version,
        change::ITEMS_UPDATE,
        DB::time(at),
    )
    .await?;
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

/// After a backend closed `deleted` live items (and wrote their tombstones)
/// at `version`: the dataset's counters, its version history, and the
/// commit. Nothing deleted: nothing bumped, nothing committed.
pub(crate) async fn finish_delete<DB>(
    mut tx: sqlx::Transaction<'static, DB>,
    dataset_id: &str,
    version: i64,
    deleted: u64,
    at: DateTime<Utc>,
) -> StoreResult<u64>
where
    DB: Db,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    if deleted == 0 {
        return Ok(0);
    }
    sqlx::query(sql::items::BUMP_FOR_DELETE)
        .bind(version)
        .bind(deleted as i64)
        .bind(DB::time(at))
        .bind(dataset_id)
        .execute(&mut *tx)
        .await?;
    record_version(
        &mut *tx,
        dataset_id,
        version,
        change::ITEMS_DELETE,
        DB::time(at),
    )
    .await?;
    tx.commit().await?;
    Ok(deleted)
}

/// Appends ` FROM item_versions iv WHERE ...` for `query`: the live items
/// or those of `query.version`, and the search.
fn push_filter<DB>(qb: &mut QueryBuilder<DB>, dataset_id: &str, query: &ItemQuery)
where
    DB: Db,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    qb.push(" FROM item_versions iv WHERE iv.dataset_id = ")
        .push_bind(dataset_id);
    match query.version {
        Some(v) => {
            qb.push(" AND iv.valid_from <= ")
                .push_bind(v)
                .push(" AND (iv.valid_to IS NULL OR iv.valid_to > ")
                .push_bind(v)
                .push(") AND ");
        }
        None => {
            qb.push(" AND iv.valid_to IS NULL AND ");
        }
    }
    qb.push(DB::NOT_DELETED);
    if let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) {
        DB::push_search(qb, search);
    }
}

pub(crate) async fn list<DB, S>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    query: ItemQuery,
) -> StoreResult<Paged<DatasetItem>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let ds = fetch(s.reads(), tenant, dataset_id).await?;
    if let Some(v) = query.version {
        check_version(&ds, v)?;
    }
    let mut count = QueryBuilder::<DB>::new("SELECT COUNT(*)");
    push_filter(&mut count, dataset_id, &query);
    let total = count.build().fetch_one(s.reads()).await?.int_at(0)?;
    let mut qb = QueryBuilder::<DB>::new(concat!("SELECT ", item_cols!()));
    push_filter(&mut qb, dataset_id, &query);
    qb.push(" ORDER BY iv.position LIMIT ")
        .push_bind(query.page.limit())
        .push(" OFFSET ")
        .push_bind(query.page.offset());
    let rows = qb.build().fetch_all(s.reads()).await?;
    let items = rows.iter().map(rows::item).collect::<StoreResult<_>>()?;
    Ok(query.page.wrap(items, total))
}

pub(crate) async fn count_at_version<DB, S>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    version: i64,
) -> StoreResult<i64>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let ds = fetch(s.reads(), tenant, dataset_id).await?;
    check_version(&ds, version)?;
    if version == ds.version {
        return Ok(ds.item_count);
    }
    sqlx::query(with_not_deleted::<DB>(sql::items::COUNT_AT_VERSION))
        .bind(dataset_id)
        .bind(version)
        .fetch_one(s.reads())
        .await?
        .int_at(0)
}

pub(crate) async fn list_versions<DB, S>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    item_id: &str,
    page: Page,
) -> StoreResult<Paged<ItemVersion>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    fetch(s.reads(), tenant, dataset_id).await?;
    let total = sqlx::query(sql::items::COUNT_VERSIONS)
        .bind(item_id)
        .bind(dataset_id)
        .fetch_one(s.reads())
        .await?
        .int_at(0)?;
    if total == 0 {
        return Err(StoreError::not_found("Item", item_id));
    }
    let rows = sqlx::query(sql::items::LIST_VERSIONS)
        .bind(item_id)
        .bind(dataset_id)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(s.reads())
        .await?;
    let items = rows
        .iter()
        .map(rows::item_version)
        .collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}

pub(crate) async fn get_version<DB, S>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    item_id: &str,
    version_number: i64,
) -> StoreResult<ItemVersion>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    fetch(s.reads(), tenant, dataset_id).await?;
    let row = sqlx::query(sql::items::GET_VERSION)
        .bind(item_id)
        .bind(dataset_id)
        .bind(version_number)
        .fetch_optional(s.reads())
        .await?
        .ok_or_else(|| {
            StoreError::not_found("Item version", format!("{item_id}@{version_number}"))
        })?;
    rows::item_version(&row)
}
