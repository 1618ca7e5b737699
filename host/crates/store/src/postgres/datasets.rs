//! Datasets and their version history (PostgreSQL).

use async_trait::async_trait;

use chrono::{DateTime, Utc};
use sqlx::{Executor, Postgres};

use super::PostgresStore;
use super::rows::jo;
use crate::error::{StoreError, StoreResult, conflict_on_unique};
use crate::models::*;
use crate::rows::{self, dataset_cols};
use crate::rules::{change, new_id, now};
use crate::sql;
use crate::store::DatasetStore;
use crate::validate::{FailureCollector, ItemValidator};

/// Live items checked per query when a schema changes.
const REVALIDATE_PAGE: i64 = 1000;

/// The tenant's dataset `id` through any executor.
pub async fn fetch<'e, E>(ex: E, tenant: &str, id: &str) -> StoreResult<Dataset>
where
    E: Executor<'e, Database = Postgres>,
{
    let row = sqlx::query(sql::datasets::GET)
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
    sqlx::query(sql::datasets::INSERT_VERSION)
        .bind(dataset_id)
        .bind(version)
        .bind(change)
        .bind(at)
        .execute(ex)
        .await?;
    Ok(())
}

#[async_trait]
impl DatasetStore for PostgresStore {
    async fn create_dataset(&self, tenant: &str, new: NewDataset) -> StoreResult<Dataset> {
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
        let mut tx = self.tx().await?;
        super::tenants::require(&mut *tx, tenant).await?;
        sqlx::query(sql::datasets::INSERT)
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
            .map_err(|e| {
                conflict_on_unique(e, || format!("a dataset named `{}` exists", ds.name))
            })?;
        record_version(&mut *tx, &ds.id, 0, change::CREATE, at).await?;
        tx.commit().await?;
        Ok(ds)
    }

    async fn get_dataset(&self, tenant: &str, id: &str) -> StoreResult<Dataset> {
        fetch(&self.pool, tenant, id).await
    }

    async fn find_dataset_by_name(&self, tenant: &str, name: &str) -> StoreResult<Option<Dataset>> {
        let row = sqlx::query(sql::datasets::GET_BY_NAME)
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rows::dataset).transpose()
    }

    async fn list_datasets(&self, tenant: &str, page: Page) -> StoreResult<Paged<Dataset>> {
        let total: i64 = sqlx::query_scalar(sql::datasets::COUNT)
            .bind(tenant)
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(sql::datasets::LIST)
            .bind(tenant)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(rows::dataset).collect::<StoreResult<_>>()?;
        Ok(page.wrap(items, total))
    }

    async fn update_dataset(
        &self,
        tenant: &str,
        id: &str,
        patch: DatasetPatch,
    ) -> StoreResult<Dataset> {
        let mut tx = self.tx().await?;
        let mut ds = lock(&mut *tx, tenant, id).await?;
        let schema_change = crate::rules::apply_dataset_patch(&mut ds, patch)?;
        let at = now();
        if let Some(field) = schema_change {
            let validator =
                ItemValidator::new(ds.input_schema.as_ref(), ds.output_schema.as_ref())?;
            if !validator.is_noop() {
                let mut failures = FailureCollector::default();
                let mut after = -1i64;
                loop {
                    let page =
                        super::items::live_page(&mut *tx, id, after, REVALIDATE_PAGE).await?;
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
        sqlx::query(sql::datasets::UPDATE)
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
            .map_err(|e| {
                conflict_on_unique(e, || format!("a dataset named `{}` exists", ds.name))
            })?;
        tx.commit().await?;
        Ok(ds)
    }

    async fn delete_dataset(&self, tenant: &str, id: &str) -> StoreResult<()> {
        let mut tx = self.tx().await?;
        lock(&mut *tx, tenant, id).await?;
        let active: i64 = sqlx::query_scalar(sql::datasets::COUNT_ACTIVE_RUNS)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
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

    async fn list_dataset_versions(
        &self,
        tenant: &str,
        dataset_id: &str,
        page: Page,
    ) -> StoreResult<Paged<DatasetVersion>> {
        fetch(&self.pool, tenant, dataset_id).await?;
        let total: i64 = sqlx::query_scalar(sql::datasets::COUNT_VERSIONS)
            .bind(dataset_id)
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(sql::datasets::LIST_VERSIONS)
            .bind(dataset_id)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(rows::dataset_version)
            .collect::<StoreResult<_>>()?;
        Ok(page.wrap(items, total))
    }
}
