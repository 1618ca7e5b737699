//! Datasets and their version history, on any backend.

use sqlx::Executor;

use super::tenancy::Admission;
use super::{Arg, Db, Handle, paged};
use crate::error::{StoreError, StoreResult, conflict_on_unique};
use crate::models::*;
use crate::rows::{self, StoredRow};
use crate::rules::{change, new_id, now};
use crate::sql;
use crate::validate::{FailureCollector, ItemValidator, collect_off_runtime};

/// Live items checked per query when a schema changes.
const REVALIDATE_PAGE: i64 = 1000;

/// Times a schema change re-validates before its write lock because the
/// dataset changed meanwhile; after that it re-validates holding the lock.
const REVALIDATE_RACES: usize = 3;

/// How a write transaction holds a dataset it reads (on a database with row
/// locks; SQLite's write transaction excludes every other writer anyway).
#[derive(Clone, Copy)]
pub(crate) enum Lock {
    /// Plain read.
    None,
    /// The dataset must not vanish until the transaction ends (`FOR SHARE`).
    Share,
    /// The dataset is being changed (`FOR UPDATE`: serializes its mutations).
    Update,
}

/// The tenant's dataset `id` through any executor (pool or transaction).
pub(crate) async fn fetch<'e, DB, E>(ex: E, tenant: &str, id: &str) -> StoreResult<Dataset>
where
    DB: Db,
    E: Executor<'e, Database = DB>,
{
    fetch_locked(ex, tenant, id, Lock::None).await
}

/// Like [`fetch`], holding the row as `lock` says until the transaction ends.
pub(crate) async fn fetch_locked<'e, DB, E>(
    ex: E,
    tenant: &str,
    id: &str,
    lock: Lock,
) -> StoreResult<Dataset>
where
    DB: Db,
    E: Executor<'e, Database = DB>,
{
    let sql = match lock {
        _ if !DB::ROW_LOCKS => sql::datasets::GET,
        Lock::None => sql::datasets::GET,
        Lock::Share => sql::datasets::GET_FOR_SHARE,
        Lock::Update => sql::datasets::GET_FOR_UPDATE,
    };
    let row = sqlx::query(sql)
        .arg(id)
        .arg(tenant)
        .fetch_optional(ex)
        .await?
        .ok_or_else(|| StoreError::not_found("Dataset", id))?;
    rows::dataset(&row)
}

/// Records a new dataset version.
pub(crate) async fn record_version<'e, DB, E>(
    ex: E,
    dataset_id: &str,
    version: i64,
    change: &str,
    at: DB::Time,
) -> StoreResult<()>
where
    DB: Db,
    E: Executor<'e, Database = DB>,
{
    sqlx::query(sql::datasets::INSERT_VERSION)
        .arg(dataset_id)
        .arg(version)
        .arg(change)
        .arg(at)
        .execute(ex)
        .await?;
    Ok(())
}

pub(crate) async fn create<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    new: NewDataset,
) -> StoreResult<Dataset> {
    crate::rules::check_name(&new.name)?;
    ItemValidator::new(new.input_schema.as_ref(), new.output_schema.as_ref())?;
    let at = now();
    let ds = Dataset {
        id: new_id(),
        tenant_id: tenant.to_string(),
        name: new.name,
        description: new.description,
        metadata: new.metadata,
        input_schema: new.input_schema,
        output_schema: new.output_schema,
        version: 0,
        item_count: 0,
        created_at: at,
        updated_at: at,
    };
    let mut tx = s.begin_write().await?;
    super::tenancy::admit::<DB>(&mut tx, tenant, Admission::Dataset).await?;
    sqlx::query(sql::datasets::INSERT)
        .arg(ds.id.as_str())
        .arg(tenant)
        .arg(ds.name.as_str())
        .arg(ds.description.as_deref())
        .arg(DB::json_opt(ds.metadata.as_ref()))
        .arg(DB::json_opt(ds.input_schema.as_ref()))
        .arg(DB::json_opt(ds.output_schema.as_ref()))
        .arg(DB::time(at))
        .execute(DB::conn(&mut tx))
        .await
        .map_err(|e| conflict_on_unique(e, || format!("a dataset named `{}` exists", ds.name)))?;
    record_version(DB::conn(&mut tx), &ds.id, 0, change::CREATE, DB::time(at)).await?;
    tx.commit().await?;
    Ok(ds)
}

pub(crate) async fn find_by_name<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    name: &str,
) -> StoreResult<Option<Dataset>> {
    let row = sqlx::query(sql::datasets::GET_BY_NAME)
        .arg(tenant)
        .arg(name)
        .fetch_optional(s.reads())
        .await?;
    row.as_ref().map(rows::dataset).transpose()
}

pub(crate) async fn list<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    page: Page,
) -> StoreResult<Paged<Dataset>> {
    paged(
        s,
        (sql::datasets::COUNT, sql::datasets::LIST),
        |q| q.arg(tenant),
        page,
        rows::dataset,
    )
    .await
}

/// A schema change re-validates every live item first, outside the write
/// lock: page by page from the read pool, each page on a blocking thread.
/// Holding the lock, it then checks that the dataset is still at the
/// version it validated (no item and no schema changed meanwhile); if not,
/// it validates again (at most [`REVALIDATE_RACES`] times, then under the
/// lock as the last resort).
pub(crate) async fn update<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    id: &str,
    patch: DatasetPatch,
) -> StoreResult<Dataset> {
    let mut races = 0;
    loop {
        let current = fetch(s.reads(), tenant, id).await?;
        let mut preview = current.clone();
        let validated = match crate::rules::apply_dataset_patch(&mut preview, patch.clone())? {
            Some(field) => {
                revalidate(s, &preview, field).await?;
                Some(preview)
            }
            None => None,
        };
        let last_chance = races >= REVALIDATE_RACES;
        match apply_update(
            s,
            tenant,
            id,
            patch.clone(),
            validated.as_ref(),
            last_chance,
        )
        .await?
        {
            Some(ds) => return Ok(ds),
            None => races += 1,
        }
    }
}

/// Checks every live item of `ds` (as patched) against its schemas, off the
/// write lock and off the runtime; a failure names up to 10 items.
async fn revalidate<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    ds: &Dataset,
    field: &str,
) -> StoreResult<()> {
    let validator = ItemValidator::new(ds.input_schema.as_ref(), ds.output_schema.as_ref())?;
    if validator.is_noop() {
        return Ok(());
    }
    let validator = std::sync::Arc::new(validator);
    let mut failures = FailureCollector::default();
    let mut after = -1i64;
    loop {
        let page = super::items::live_page(s.reads(), &ds.id, after, REVALIDATE_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        failures = collect_off_runtime(validator.clone(), failures, page).await?;
    }
    failures.finish(field)
}

/// Applies `patch` holding the write lock. A schema change needs
/// `validated`: the dataset as patched when its items were re-validated;
/// `None` (no commit) when the dataset changed since, unless `last_chance`,
/// which re-validates here, under the lock.
async fn apply_update<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    id: &str,
    patch: DatasetPatch,
    validated: Option<&Dataset>,
    last_chance: bool,
) -> StoreResult<Option<Dataset>> {
    let mut tx = s.begin_write().await?;
    let mut ds = fetch_locked(DB::conn(&mut tx), tenant, id, Lock::Update).await?;
    let version_before = ds.version;
    let schema_change = crate::rules::apply_dataset_patch(&mut ds, patch)?;
    let at = now();
    if let Some(field) = schema_change {
        let still_valid = validated.is_some_and(|v| {
            v.version == version_before
                && v.input_schema == ds.input_schema
                && v.output_schema == ds.output_schema
        });
        if !still_valid && !last_chance {
            return Ok(None);
        }
        let validator = ItemValidator::new(ds.input_schema.as_ref(), ds.output_schema.as_ref())?;
        if !still_valid && !validator.is_noop() {
            let mut failures = FailureCollector::default();
            let mut after = -1i64;
            loop {
                let page =
                    super::items::live_page(DB::conn(&mut tx), id, after, REVALIDATE_PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.position;
                for item in &page {
                    failures.check(&validator, item);
                }
            }
            failures.finish(field)?;
        }
        ds.version += 1;
        record_version(
            DB::conn(&mut tx),
            id,
            ds.version,
            change::SCHEMA,
            DB::time(at),
        )
        .await?;
    }
    ds.updated_at = at;
    sqlx::query(sql::datasets::UPDATE)
        .arg(ds.name.as_str())
        .arg(ds.description.as_deref())
        .arg(DB::json_opt(ds.metadata.as_ref()))
        .arg(DB::json_opt(ds.input_schema.as_ref()))
        .arg(DB::json_opt(ds.output_schema.as_ref()))
        .arg(ds.version)
        .arg(DB::time(at))
        .arg(id)
        .execute(DB::conn(&mut tx))
        .await
        .map_err(|e| conflict_on_unique(e, || format!("a dataset named `{}` exists", ds.name)))?;
    tx.commit().await?;
    Ok(Some(ds))
}

pub(crate) async fn delete<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    id: &str,
) -> StoreResult<()> {
    let mut tx = s.begin_write().await?;
    fetch_locked(DB::conn(&mut tx), tenant, id, Lock::Update).await?;
    let active = sqlx::query(sql::datasets::COUNT_ACTIVE_RUNS)
        .arg(id)
        .fetch_one(DB::conn(&mut tx))
        .await?
        .int_at(0)?;
    if active > 0 {
        return Err(StoreError::Conflict(format!(
            "dataset {id} has {active} pending or running run(s); cancel them first"
        )));
    }
    sqlx::query(sql::datasets::DELETE)
        .arg(id)
        .execute(DB::conn(&mut tx))
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn list_versions<DB: Db, S: Handle<Db = DB>>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    page: Page,
) -> StoreResult<Paged<DatasetVersion>> {
    fetch(s.reads(), tenant, dataset_id).await?;
    paged(
        s,
        (sql::datasets::COUNT_VERSIONS, sql::datasets::LIST_VERSIONS),
        |q| q.arg(dataset_id),
        page,
        rows::dataset_version,
    )
    .await
}
