//! Datasets and their version history (SQLite).

use sqlx::{Executor, Sqlite};

use super::SqliteStore;
use super::rows::{self, dataset_cols, to_json_opt};
use crate::error::{StoreError, StoreResult, conflict_on_unique};
use crate::models::*;
use crate::rules::{change, new_id, now, to_ms};
use crate::validate::{FailureCollector, ItemValidator};

/// Live items checked per query when a schema changes.
const REVALIDATE_PAGE: i64 = 1000;

/// The tenant's dataset `id` through any executor (pool or transaction).
pub async fn fetch<'e, E>(ex: E, tenant: &str, id: &str) -> StoreResult<Dataset>
where
    E: Executor<'e, Database = Sqlite>,
{
    let row = sqlx::query(concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE id = ? AND tenant_id = ?"
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
    at: i64,
) -> StoreResult<()>
where
    E: Executor<'e, Database = Sqlite>,
{
    sqlx::query(
        "INSERT INTO dataset_versions (dataset_id, version, change, created_at) VALUES (?, ?, ?, ?)",
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
    s: &SqliteStore,
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
    let mut tx = s.write_tx().await?;
    super::tenants::require(&mut *tx, tenant).await?;
    sqlx::query(
        "INSERT INTO datasets (id, tenant_id, name, description, metadata, input_schema, \
         output_schema, version, item_count, next_position, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?)",
    )
    .bind(&ds.id)
    .bind(tenant)
    .bind(&ds.name)
    .bind(&ds.description)
    .bind(to_json_opt(ds.metadata.as_ref()))
    .bind(to_json_opt(ds.input_schema.as_ref()))
    .bind(to_json_opt(ds.output_schema.as_ref()))
    .bind(to_ms(at))
    .bind(to_ms(at))
    .execute(&mut *tx)
    .await
    .map_err(|e| conflict_on_unique(e, || format!("a dataset named `{}` exists", ds.name)))?;
    record_version(&mut *tx, &ds.id, 0, change::CREATE, to_ms(at)).await?;
    tx.commit().await?;
    Ok(ds)
}

pub async fn get_dataset(s: &SqliteStore, tenant: &str, id: &str) -> StoreResult<Dataset> {
    fetch(&s.reader, tenant, id).await
}

pub async fn find_dataset_by_name(
    s: &SqliteStore,
    tenant: &str,
    name: &str,
) -> StoreResult<Option<Dataset>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE tenant_id = ? AND name = ?"
    ))
    .bind(tenant)
    .bind(name)
    .fetch_optional(&s.reader)
    .await?;
    row.as_ref().map(rows::dataset).transpose()
}

pub async fn list_datasets(
    s: &SqliteStore,
    tenant: &str,
    page: Page,
) -> StoreResult<Paged<Dataset>> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM datasets WHERE tenant_id = ?")
        .bind(tenant)
        .fetch_one(&s.reader)
        .await?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        dataset_cols!(),
        " FROM datasets WHERE tenant_id = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
    ))
    .bind(tenant)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&s.reader)
    .await?;
    let items = rows.iter().map(rows::dataset).collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}

pub async fn update_dataset(
    s: &SqliteStore,
    tenant: &str,
    id: &str,
    patch: DatasetPatch,
) -> StoreResult<Dataset> {
    let mut tx = s.write_tx().await?;
    let mut ds = fetch(&mut *tx, tenant, id).await?;
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
        record_version(&mut *tx, id, ds.version, change::SCHEMA, to_ms(at)).await?;
    }
    ds.updated_at = at;
    sqlx::query(
        "UPDATE datasets SET name = ?, description = ?, metadata = ?, input_schema = ?, \
         output_schema = ?, version = ?, updated_at = ? WHERE id = ?",
    )
    .bind(&ds.name)
    .bind(&ds.description)
    .bind(to_json_opt(ds.metadata.as_ref()))
    .bind(to_json_opt(ds.input_schema.as_ref()))
    .bind(to_json_opt(ds.output_schema.as_ref()))
    .bind(ds.version)
    .bind(to_ms(at))
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(|e| conflict_on_unique(e, || format!("a dataset named `{}` exists", ds.name)))?;
    tx.commit().await?;
    Ok(ds)
}

pub async fn delete_dataset(s: &SqliteStore, tenant: &str, id: &str) -> StoreResult<()> {
    let mut tx = s.write_tx().await?;
    fetch(&mut *tx, tenant, id).await?;
    let active: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM runs WHERE dataset_id = ? AND status IN ('pending', 'running')",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if active > 0 {
        return Err(StoreError::Conflict(format!(
            "dataset {id} has {active} pending or running run(s); cancel them first"
        )));
    }
    sqlx::query("DELETE FROM datasets WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list_dataset_versions(
    s: &SqliteStore,
    tenant: &str,
    dataset_id: &str,
    page: Page,
) -> StoreResult<Paged<DatasetVersion>> {
    fetch(&s.reader, tenant, dataset_id).await?;
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM dataset_versions WHERE dataset_id = ?")
            .bind(dataset_id)
            .fetch_one(&s.reader)
            .await?;
    let rows = sqlx::query(
        "SELECT dataset_id, version, change, created_at FROM dataset_versions \
         WHERE dataset_id = ? ORDER BY version DESC LIMIT ? OFFSET ?",
    )
    .bind(dataset_id)
    .bind(page.limit())
    .bind(page.offset())
    .fetch_all(&s.reader)
    .await?;
    let items = rows
        .iter()
        .map(rows::dataset_version)
        .collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}
