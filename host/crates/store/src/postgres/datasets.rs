//! Datasets and their version history (PostgreSQL): all of it is the shared code
//! in [`crate::shared::datasets`].

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::StoreResult;
use crate::models::*;
use crate::shared::Handle;
use crate::shared::datasets as shared;
use crate::store::DatasetStore;

#[async_trait]
impl DatasetStore for PostgresStore {
    async fn create_dataset(&self, tenant: &str, new: NewDataset) -> StoreResult<Dataset> {
        shared::create(self, tenant, new).await
    }

    async fn get_dataset(&self, tenant: &str, id: &str) -> StoreResult<Dataset> {
        shared::fetch(self.reads(), tenant, id).await
    }

    async fn find_dataset_by_name(&self, tenant: &str, name: &str) -> StoreResult<Option<Dataset>> {
        shared::find_by_name(self, tenant, name).await
    }

    async fn list_datasets(&self, tenant: &str, page: Page) -> StoreResult<Paged<Dataset>> {
        shared::list(self, tenant, page).await
    }

    async fn update_dataset(
        &self,
        tenant: &str,
        id: &str,
        patch: DatasetPatch,
    ) -> StoreResult<Dataset> {
        shared::update(self, tenant, id, patch).await
    }

    async fn delete_dataset(&self, tenant: &str, id: &str) -> StoreResult<()> {
        shared::delete(self, tenant, id).await
    }

    async fn list_dataset_versions(
        &self,
        tenant: &str,
        dataset_id: &str,
        page: Page,
    ) -> StoreResult<Paged<DatasetVersion>> {
        shared::list_versions(self, tenant, dataset_id, page).await
    }
}
