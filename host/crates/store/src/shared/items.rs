//! Items and their versions, on any backend.
//!
//! Items are stored as SCD-2 rows in `item_versions`: the items of dataset
//! version V are the rows with `valid_from <= V < valid_to` (an open
//! `valid_to` is NULL) that are not tombstones. What stays per backend:
//! deleting a list of ids (`json_each` vs `ANY`), paging the items of a
//! version (PostgreSQL scans bounded position windows), and the search
//! ([`Db::push_search`]).

use chrono::{DateTime, Utc};
use sqlx::{Executor, QueryBuilder};

use super::datasets::{Lock, fetch, fetch_locked, record_version};
use super::{Arg, Db, Handle, PushArg, paged, with_not_deleted};
use crate::error::{StoreError, StoreResult};
use crate::models::*;
use crate::rows::{self, StoredRow, item_cols};
use crate::rules::{
    INSERT_CHUNK, apply_item_patch, change, check_item_limit, check_version, new_id, now,
};
use crate::sql;
use crate::tenancy::{check_stored_bytes, item_bytes};
use crate::validate::{ItemValidator, check_item_size, check_off_runtime, check_request_size};

/// Times an add validates again because the dataset's schemas changed
/// between its validation and its write lock, before it gives up.
const SCHEMA_RACES: usize = 3;

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
{
    let rows = sqlx::query(with_not_deleted::<DB>(sql::items::LIVE_PAGE))
        .arg(dataset_id)
        .arg(after)
        .arg(limit)
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
{
    let row = sqlx::query(with_not_deleted::<DB>(sql::items::LIVE_ITEM))
        .arg(item_id)
        .arg(dataset_id)
        .fetch_optional(ex)
        .await?
        .ok_or_else(|| StoreError::not_found("Item", item_id))?;
    Ok((rows::item(&row)?, row.int("version_number")?))
}

/// Checks the caps (items per call, bytes per item), validates `items`
/// against the dataset's schemas before taking the write lock (on a
/// blocking thread), then, holding it, checks the tenant's limits, inserts
/// them in chunks (one multi-row `INSERT` each) with one version bump, and
/// commits. If the schemas changed between validation and the lock, the
/// items are validated again.
pub(crate) async fn add<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    mut items: Vec<NewItem>,
) -> StoreResult<Vec<DatasetItem>> {
    check_request_size(items.len())?;
    if items.is_empty() {
        fetch(s.reads(), tenant, dataset_id).await?;
        return Ok(Vec::new());
    }
    for _ in 0..SCHEMA_RACES {
        let ds = fetch(s.reads(), tenant, dataset_id).await?;
        let validator = compile(&ds)?;
        items = check_off_runtime(validator, items, 0).await?;
        let mut tx = s.begin_write().await?;
        let locked = fetch_locked(DB::conn(&mut tx), tenant, dataset_id, Lock::Update).await?;
        if (&locked.input_schema, &locked.output_schema) != (&ds.input_schema, &ds.output_schema) {
            continue;
        }
        let mut adding = Adding::start(&mut tx, &locked).await?;
        let added = adding.insert(&mut tx, items).await?;
        adding.finish(&mut tx).await?;
        tx.commit().await?;
        return Ok(added);
    }
    Err(StoreError::Conflict(format!(
        "the schemas of dataset {dataset_id} kept changing while the items were validated; nothing was added, try again"
    )))
}

/// The dataset's compiled schemas, shareable with a blocking thread.
fn compile(ds: &Dataset) -> StoreResult<std::sync::Arc<ItemValidator>> {
    Ok(std::sync::Arc::new(ItemValidator::new(
        ds.input_schema.as_ref(),
        ds.output_schema.as_ref(),
    )?))
}

/// [`add`] for items that arrive in batches (a file being read): one
/// transaction and one version bump for all of them, so readers see the
/// items all at once or not at all, and memory holds one batch at a time.
/// The feed must end with [`ItemFeed::Done`]; a feed that closes without
/// it (its producer failed) rolls everything back.
pub(crate) async fn add_streamed<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    mut feed: tokio::sync::mpsc::Receiver<ItemFeed>,
) -> StoreResult<StreamedItems> {
    let mut tx = s.begin_write().await?;
    let ds = fetch_locked(DB::conn(&mut tx), tenant, dataset_id, Lock::Update).await?;
    let validator = compile(&ds)?;
    let mut adding = Adding::start(&mut tx, &ds).await?;
    loop {
        match feed.recv().await {
            Some(ItemFeed::Batch(items)) => {
                let first = adding.count as usize;
                // On a blocking thread: the runtime keeps serving others.
                let items = check_off_runtime(validator.clone(), items, first).await?;
                adding.insert(&mut tx, items).await?;
            }
            Some(ItemFeed::Done) => break,
            None => {
                return Err(StoreError::validation(
                    "items",
                    "the item feed stopped before its end; nothing was added",
                ));
            }
        }
    }
    if adding.count == 0 {
        return Ok(StreamedItems {
            added: 0,
            version: ds.version,
        });
    }
    let version = adding.finish(&mut tx).await?;
    tx.commit().await?;
    Ok(StreamedItems {
        added: adding.count,
        version,
    })
}

/// Items being added to a dataset inside one write transaction: checks
/// each batch (validated by the caller) against the tenant's limits as it
/// comes, and bumps the version once at the end.
struct Adding {
    dataset_id: String,
    version: i64,
    at: DateTime<Utc>,
    item_count: i64,
    max_items: i64,
    next_position: i64,
    max_bytes: i64,
    stored_bytes: i64,
    /// Items inserted so far.
    count: u64,
    /// Their bytes, as the tenant's storage limit counts them.
    bytes: i64,
}

impl Adding {
    async fn start<DB: Db>(
        tx: &mut sqlx::Transaction<'static, DB>,
        ds: &Dataset,
    ) -> StoreResult<Self> {
        let limits = sqlx::query(sql::items::LIMITS_AND_NEXT_POSITION)
            .arg(ds.id.as_str())
            .fetch_one(DB::conn(tx))
            .await?;
        Ok(Self {
            dataset_id: ds.id.clone(),
            version: ds.version + 1,
            at: now(),
            item_count: ds.item_count,
            max_items: limits.int_at(0)?,
            next_position: limits.int_at(1)?,
            max_bytes: limits.int_at(2)?,
            stored_bytes: limits.int_at(3)?,
            count: 0,
            bytes: 0,
        })
    }

    async fn insert<DB: Db>(
        &mut self,
        tx: &mut sqlx::Transaction<'static, DB>,
        items: Vec<NewItem>,
    ) -> StoreResult<Vec<DatasetItem>> {
        check_item_limit(
            self.item_count + self.count as i64,
            items.len(),
            self.max_items,
        )?;
        let adding: i64 = items
            .iter()
            .map(|it| item_bytes(&it.input, it.expected_output.as_ref(), it.context.as_ref()))
            .sum();
        check_stored_bytes(self.stored_bytes + self.bytes, adding, self.max_bytes)?;
        let (version, at) = (self.version, self.at);
        let first = self.next_position + self.count as i64;
        let added: Vec<DatasetItem> = items
            .into_iter()
            .enumerate()
            .map(|(i, it)| DatasetItem {
                id: new_id(),
                dataset_id: self.dataset_id.clone(),
                version,
                position: first + i as i64,
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
                b.push_arg(it.id.as_str())
                    .push_arg(1i64)
                    .push_arg(self.dataset_id.as_str())
                    .push_arg(it.position)
                    .push_arg(version)
                    .push_arg(false)
                    .push_arg(DB::json(&it.input))
                    .push_arg(DB::json_opt(it.expected_output.as_ref()))
                    .push_arg(DB::json_opt(it.context.as_ref()))
                    .push_arg(DB::time(at))
                    .push_arg(DB::time(at));
            });
            qb.build().execute(DB::conn(tx)).await?;
        }
        self.count += added.len() as u64;
        self.bytes += adding;
        Ok(added)
    }

    /// Bumps the dataset's version and counters; returns the new version.
    async fn finish<DB: Db>(&self, tx: &mut sqlx::Transaction<'static, DB>) -> StoreResult<i64> {
        sqlx::query(sql::items::BUMP_FOR_ADD)
            .arg(self.version)
            .arg(self.count as i64)
            .arg(DB::time(self.at))
            .arg(self.dataset_id.as_str())
            .arg(self.bytes)
            .execute(DB::conn(tx))
            .await?;
        record_version(
            DB::conn(tx),
            &self.dataset_id,
            self.version,
            change::ITEMS_ADD,
            DB::time(self.at),
        )
        .await?;
        Ok(self.version)
    }
}

pub(crate) async fn get<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    item_id: &str,
) -> StoreResult<DatasetItem> {
    fetch(s.reads(), tenant, dataset_id).await?;
    Ok(live_item(s.reads(), dataset_id, item_id).await?.0)
}

pub(crate) async fn update<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    item_id: &str,
    patch: ItemPatch,
) -> StoreResult<DatasetItem> {
    let mut tx = s.begin_write().await?;
    let ds = fetch_locked(DB::conn(&mut tx), tenant, dataset_id, Lock::Update).await?;
    let (old, number) = live_item(DB::conn(&mut tx), dataset_id, item_id).await?;
    let snap = apply_item_patch(&old, patch);
    check_item_size(
        "item",
        item_bytes(
            &snap.input,
            snap.expected_output.as_ref(),
            snap.context.as_ref(),
        ),
    )?;
    ItemValidator::new(ds.input_schema.as_ref(), ds.output_schema.as_ref())?.check(
        "",
        &snap.input,
        snap.expected_output.as_ref(),
    )?;
    let version = ds.version + 1;
    let at = now();
    sqlx::query(sql::items::CLOSE)
        .arg(version)
        .arg(item_id)
        .arg(number)
        .execute(DB::conn(&mut tx))
        .await?;
    sqlx::query(sql::items::INSERT_ONE)
        .arg(item_id)
        .arg(number + 1)
        .arg(dataset_id)
        .arg(old.position)
        .arg(version)
        .arg(false)
        .arg(DB::json(&snap.input))
        .arg(DB::json_opt(snap.expected_output.as_ref()))
        .arg(DB::json_opt(snap.context.as_ref()))
        .arg(DB::time(old.created_at))
        .arg(DB::time(at))
        .execute(DB::conn(&mut tx))
        .await?;
    sqlx::query(sql::items::BUMP_FOR_UPDATE)
        .arg(version)
        .arg(DB::time(at))
        .arg(dataset_id)
        .arg(item_bytes(
            &snap.input,
            snap.expected_output.as_ref(),
            snap.context.as_ref(),
        ))
        .execute(DB::conn(&mut tx))
        .await?;
    record_version(
        DB::conn(&mut tx),
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
pub(crate) async fn finish_delete<DB: Db>(
    mut tx: sqlx::Transaction<'static, DB>,
    dataset_id: &str,
    version: i64,
    deleted: u64,
    at: DateTime<Utc>,
) -> StoreResult<u64> {
    if deleted == 0 {
        return Ok(0);
    }
    sqlx::query(sql::items::BUMP_FOR_DELETE)
        .arg(version)
        .arg(deleted as i64)
        .arg(DB::time(at))
        .arg(dataset_id)
        .execute(DB::conn(&mut tx))
        .await?;
    record_version(
        DB::conn(&mut tx),
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
fn push_filter<DB: Db>(qb: &mut QueryBuilder<DB>, dataset_id: &str, query: &ItemQuery) {
    qb.push(" FROM item_versions iv WHERE iv.dataset_id = ")
        .push_arg(dataset_id);
    match query.version {
        Some(v) => {
            qb.push(" AND iv.valid_from <= ")
                .push_arg(v)
                .push(" AND (iv.valid_to IS NULL OR iv.valid_to > ")
                .push_arg(v)
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

pub(crate) async fn list<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    query: ItemQuery,
) -> StoreResult<Paged<DatasetItem>> {
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
        .push_arg(query.page.limit())
        .push(" OFFSET ")
        .push_arg(query.page.offset());
    let rows = qb.build().fetch_all(s.reads()).await?;
    let items = rows.iter().map(rows::item).collect::<StoreResult<_>>()?;
    Ok(query.page.wrap(items, total))
}

pub(crate) async fn count_at_version<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    version: i64,
) -> StoreResult<i64> {
    let ds = fetch(s.reads(), tenant, dataset_id).await?;
    check_version(&ds, version)?;
    if version == ds.version {
        return Ok(ds.item_count);
    }
    sqlx::query(with_not_deleted::<DB>(sql::items::COUNT_AT_VERSION))
        .arg(dataset_id)
        .arg(version)
        .fetch_one(s.reads())
        .await?
        .int_at(0)
}

pub(crate) async fn list_versions<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    item_id: &str,
    page: Page,
) -> StoreResult<Paged<ItemVersion>> {
    fetch(s.reads(), tenant, dataset_id).await?;
    let versions = paged(
        s,
        (sql::items::COUNT_VERSIONS, sql::items::LIST_VERSIONS),
        |q| q.arg(item_id).arg(dataset_id),
        page,
        rows::item_version,
    )
    .await?;
    if versions.total == 0 {
        return Err(StoreError::not_found("Item", item_id));
    }
    Ok(versions)
}

pub(crate) async fn get_version<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    item_id: &str,
    version_number: i64,
) -> StoreResult<ItemVersion> {
    fetch(s.reads(), tenant, dataset_id).await?;
    let row = sqlx::query(sql::items::GET_VERSION)
        .arg(item_id)
        .arg(dataset_id)
        .arg(version_number)
        .fetch_optional(s.reads())
        .await?
        .ok_or_else(|| {
            StoreError::not_found("Item version", format!("{item_id}@{version_number}"))
        })?;
    rows::item_version(&row)
}
