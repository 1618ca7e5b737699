//! Datasets and their version history (PostgreSQL).

use chrono::{DateTime, Utc};
use sqlx::{Executor, Postgres};

use super::PostgresStore;
use super::rows::{self, dataset_cols, jo};
use crate::error::{StoreError, StoreResult, conflict_on_unique};
use crate::models::*;
use crate::rules::{change, new_id, now};
use crate::validate::{FailureCollector, ItemValidator};

/// Live items checked per query when a schema changes.
const REVALIDATE_PAGE: i64 = 1000;

/// The tenant's dataset `id` through any executor.
pub async fn fetch<'e, E>(ex: E, tenant: &str, id: &str) -> StoreResult<Dataset>
where
    E: Executor<'e, Database = Postgres>,
{
    let row = sqlx::query(concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE id = $1 AND tenant_id = $2"
    ))
    .bind(id)
    .bind(tenant)
    .fetch_optional(ex)
    .await?
    .ok_or_else(|| StoreError::not_found("Dataset", id))?;
    rows::dataset(&row)
}

/// Like [`fetch`], locking the row until the transaction ends (serializes
/// the mutations of one dataset).
pub async fn lock<'e, E>(ex: E, tenant: &str, id: &str) -> StoreResult<Dataset>
where
    E: Executor<'e, Database = Postgres>,
{
    let row = sqlx::query(concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE id = $1 AND tenant_id = $2 FOR UPDATE"
    ))
    .bind(id)
    .bind(tenant)
    .fetch_optional(ex)
    .await?
    .ok_or_else(|| StoreError::not_found("Dataset", id))?;
    rows::dataset(&row)
}

/// Records a new dataset version.
pub async fn record_version<'e, E>(
    ex: E,
    dataset_id: &str,
    version: i64,
    change: &str,
    at: DateTime<Utc>,
) -> StoreResult<()>
where
    E: Executor<'e, Database = Postgres>,
{
    sqlx::query(
        "INSERT INTO dataset_versions (dataset_id, version, change, created_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(dataset_id)
    .bind(version)
    .bind(change)
    .bind(at)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn create_dataset(
    s: &PostgresStore,
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
    let mut tx = s.tx().await?;
    super::tenants::require(&mut *tx, tenant).await?;
    sqlx::query(
        "INSERT INTO datasets (id, tenant_id, name, description, metadata, input_schema, \
         output_schema, version, item_count, next_position, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, 0, $8, $8)",
    )
    .bind(&ds.id)
    .bind(tenant)
    .bind(&ds.name)
    .bind(&ds.description)
    .bind(jo(ds.metadata.as_ref()))
    .bind(jo(ds.input_schema.as_ref()))
    .bind(jo(ds.output_schema.as_ref()))
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(|e| conflict_on_unique(e, || format!("a dataset named `{}` exists", ds.name)))?;
    record_version(&mut *tx, &ds.id, 0, change::CREATE, at).await?;
    tx.commit().await?;
    Ok(ds)
}

pub async fn get_dataset(s: &PostgresStore, tenant: &str, id: &str) -> StoreResult<Dataset> {
    fetch(&s.pool, tenant, id).await
}

pub async fn find_dataset_by_name(
    s: &PostgresStore,
    tenant: &str,
    name: &str,
) -> StoreResult<Option<Dataset>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE tenant_id = $1 AND name = $2"
    ))
    .bind(tenant)
    .bind(name)
    .fetch_optional(&s.pool)
    .await?;
    row.as_ref().map(rows::dataset).transpose()
}

pub async fn list_datasets(
    s: &PostgresStore,
    tenant: &str,
    page: Page,
) -> StoreResult<Paged<Dataset>> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM datasets WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&s.pool)
        .await?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(tenant)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&s.pool)
    .await?;
    let items = rows.iter().map(rows::dataset).collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}

pub async fn update_dataset(
    s: &PostgresStore,
    tenant: &str,
    id: &str,
    patch: DatasetPatch,
) -> StoreResult<Dataset> {
    let mut tx = s.tx().await?;
    let mut ds = lock(&mut *tx, tenant, id).await?;
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
        record_version(&mut *tx, id, ds.version, change::SCHEMA, at).await?;
    }
    ds.updated_at = at;
    sqlx::query(
        "UPDATE datasets SET name = $1, description = $2, metadata = $3, input_schema = $4, \
         output_schema = $5, version = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(&ds.name)
    .bind(&ds.description)
    .bind(jo(ds.metadata.as_ref()))
    .bind(jo(ds.input_schema.as_ref()))
    .bind(jo(ds.output_schema.as_ref()))
    .bind(ds.version)
    .bind(at)
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(|e| conflict_on_unique(e, || format!("a dataset named `{}` exists", ds.name)))?;
    tx.commit().await?;
    Ok(ds)
}

pub async fn delete_dataset(s: &PostgresStore, tenant: &str, id: &str) -> StoreResult<()> {
    let mut tx = s.tx().await?;
    lock(&mut *tx, tenant, id).await?;
    let active: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM runs WHERE dataset_id = $1 AND status IN ('pending', 'running')",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if active > 0 {
        return Err(StoreError::Conflict(format!(
            "dataset {id} has {active} pending or running run(s); cancel them first"
        )));
    }
    sqlx::query("DELETE FROM datasets WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list_dataset_versions(
    s: &PostgresStore,
    tenant: &str,
    dataset_id: &str,
    page: Page,
) -> StoreResult<Paged<DatasetVersion>> {
    fetch(&s.pool, tenant, dataset_id).await?;
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM dataset_versions WHERE dataset_id = $1")
            .bind(dataset_id)
            .fetch_one(&s.pool)
            .await?;
    let rows = sqlx::query(
        "SELECT dataset_id, version, change, created_at FROM dataset_versions \
         WHERE dataset_id = $1 ORDER BY version DESC LIMIT $2 OFFSET $3",
    )
    .bind(dataset_id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&s.pool)
    .await?;
    let items = rows
        .iter()
        .map(rows::dataset_version)
        .collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}
