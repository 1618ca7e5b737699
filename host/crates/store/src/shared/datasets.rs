//! Datasets and their version history, on any backend.

use sqlx::{Encode, Executor, Type};

use super::{Db, Handle};
use crate::error::{StoreError, StoreResult, conflict_on_unique};
use crate::models::*;
use crate::rows::{self, StoredRow};
use crate::rules::{change, new_id, now};
use crate::sql;
use crate::validate::{FailureCollector, ItemValidator};

/// Live items checked per query when a schema changes.
const REVALIDATE_PAGE: i64 = 1000;

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
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
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
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let sql = match lock {
        _ if !DB::ROW_LOCKS => sql::datasets::GET,
        Lock::None => sql::datasets::GET,
        Lock::Share => sql::datasets::GET_FOR_SHARE,
        Lock::Update => sql::datasets::GET_FOR_UPDATE,
    };
    let row = sqlx::query(sql)
        .bind(id)
        .bind(tenant)
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
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    sqlx::query(sql::datasets::INSERT_VERSION)
        .bind(dataset_id)
        .bind(version)
        .bind(change)
        .bind(at)
        .execute(ex)
        .await?;
    Ok(())
}

pub(crate) async fn create<DB, S>(s: &S, tenant: &str, new: NewDataset) -> StoreResult<Dataset>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> Option<&'t str>: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
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
    super::tenants::require(&mut *tx, tenant).await?;
    sqlx::query(sql::datasets::INSERT)
        .bind(ds.id.as_str())
        .bind(tenant)
        .bind(ds.name.as_str())
        .bind(ds.description.as_deref())
        .bind(DB::json_opt(ds.metadata.as_ref()))
        .bind(DB::json_opt(ds.input_schema.as_ref()))
        .bind(DB::json_opt(ds.output_schema.as_ref()))
        .bind(DB::time(at))
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, || format!("a dataset named `{}` exists", ds.name)))?;
    record_version(&mut *tx, &ds.id, 0, change::CREATE, DB::time(at)).await?;
    tx.commit().await?;
    Ok(ds)
}

pub(crate) async fn find_by_name<DB, S>(
    s: &S,
    tenant: &str,
    name: &str,
) -> StoreResult<Option<Dataset>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let row = sqlx::query(sql::datasets::GET_BY_NAME)
        .bind(tenant)
        .bind(name)
        .fetch_optional(s.reads())
        .await?;
    row.as_ref().map(rows::dataset).transpose()
}

pub(crate) async fn list<DB, S>(s: &S, tenant: &str, page: Page) -> StoreResult<Paged<Dataset>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let total = sqlx::query(sql::datasets::COUNT)
        .bind(tenant)
        .fetch_one(s.reads())
        .await?
        .int_at(0)?;
    let rows = sqlx::query(sql::datasets::LIST)
        .bind(tenant)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(s.reads())
        .await?;
    let items = rows.iter().map(rows::dataset).collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}

pub(crate) async fn update<DB, S>(
    s: &S,
    tenant: &str,
    id: &str,
    patch: DatasetPatch,
) -> StoreResult<Dataset>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> Option<&'t str>: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    let mut tx = s.begin_write().await?;
    let mut ds = fetch_locked(&mut *tx, tenant, id, Lock::Update).await?;
    let schema_change = crate::rules::apply_dataset_patch(&mut ds, patch)?;
    let at = now();
    if let Some(field) = schema_change {
        let validator = ItemValidator::new(ds.input_schema.as_ref(), ds.output_schema.as_ref())?;
        if !validator.is_noop() {
            let mut failures = FailureCollector::default();
            let mut after = -1i64;
            loop {
                let page = super::items::live_page(&mut *tx, id, after, REVALIDATE_PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.position;
                for item in &page {
                    failures.check(&validator, item);
                }
            }
            failures.finish(field)?;
        }
        ds.version += 1;
        record_version(&mut *tx, id, ds.version, change::SCHEMA, DB::time(at)).await?;
    }
    ds.updated_at = at;
    sqlx::query(sql::datasets::UPDATE)
        .bind(ds.name.as_str())
        .bind(ds.description.as_deref())
        .bind(DB::json_opt(ds.metadata.as_ref()))
        .bind(DB::json_opt(ds.input_schema.as_ref()))
        .bind(DB::json_opt(ds.output_schema.as_ref()))
        .bind(ds.version)
        .bind(DB::time(at))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, || format!("a dataset named `{}` exists", ds.name)))?;
    tx.commit().await?;
    Ok(ds)
}

pub(crate) async fn delete<DB, S>(s: &S, tenant: &str, id: &str) -> StoreResult<()>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
{
    let mut tx = s.begin_write().await?;
    fetch_locked(&mut *tx, tenant, id, Lock::Update).await?;
    let active = sqlx::query(sql::datasets::COUNT_ACTIVE_RUNS)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?
        .int_at(0)?;
    if active > 0 {
        return Err(StoreError::Conflict(format!(
            "dataset {id} has {active} pending or running run(s); cancel them first"
        )));
    }
    sqlx::query(sql::datasets::DELETE)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn list_versions<DB, S>(
    s: &S,
    tenant: &str,
    dataset_id: &str,
    page: Page,
) -> StoreResult<Paged<DatasetVersion>>
where
    DB: Db,
    S: Handle<Db = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    i64: for<'t> Encode<'t, DB> + Type<DB>,
{
    fetch(s.reads(), tenant, dataset_id).await?;
    let total = sqlx::query(sql::datasets::COUNT_VERSIONS)
        .bind(dataset_id)
        .fetch_one(s.reads())
        .await?
        .int_at(0)?;
    let rows = sqlx::query(sql::datasets::LIST_VERSIONS)
        .bind(dataset_id)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(s.reads())
        .await?;
    let items = rows
        .iter()
        .map(rows::dataset_version)
        .collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}
