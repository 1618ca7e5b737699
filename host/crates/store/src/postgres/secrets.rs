//! Sealed secrets (PostgreSQL): all of it is the shared code in
//! [`crate::shared::secrets`].

use async_trait::async_trait;

use super::PostgresStore;
use crate::error::StoreResult;
use crate::network::{SealedSecret, SecretInfo, SecretStore};
use crate::shared::secrets as shared;

#[async_trait]
impl SecretStore for PostgresStore {
    async fn set_secret(&self, tenant: &str, secret: SealedSecret) -> StoreResult<SecretInfo> {
        shared::set(self, tenant, secret).await
    }

    async fn list_secrets(&self, tenant: &str) -> StoreResult<Vec<SecretInfo>> {
        shared::list(self, tenant).await
    }

    async fn delete_secret(&self, tenant: &str, name: &str) -> StoreResult<()> {
        shared::delete(self, tenant, name).await
    }

    async fn sealed_secrets(
        &self,
        tenant: &str,
        names: &[String],
    ) -> StoreResult<Vec<SealedSecret>> {
        shared::sealed(self, tenant, names).await
    }
}
