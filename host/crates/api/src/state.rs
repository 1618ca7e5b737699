//! What every handler shares: the store, the plugin catalog, the scheduler.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use assay_runner::{Catalog, Scheduler};
use assay_store::{Store, StoreError, Tenant};
use tokio_util::sync::CancellationToken;

use crate::config::ApiOptions;
use crate::error::ApiResult;

/// Shared state of the router. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    scheduler: Scheduler,
    options: ApiOptions,
    /// Tenants known to exist (created on first use).
    tenants: Mutex<HashSet<String>>,
    /// Cancelled when the server shuts down: event streams end.
    shutdown: CancellationToken,
}

impl AppState {
    /// State over `store` and a running `scheduler` (whose catalog serves
    /// the plugin routes).
    pub fn new(store: Arc<dyn Store>, scheduler: Scheduler, options: ApiOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                scheduler,
                options,
                tenants: Mutex::new(HashSet::new()),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The scheduler that executes runs.
    pub fn scheduler(&self) -> &Scheduler {
        &self.inner.scheduler
    }

    /// The plugin catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        self.inner.scheduler.catalog()
    }

    /// Router settings.
    pub fn options(&self) -> &ApiOptions {
        &self.inner.options
    }

    /// Cancelled at shutdown (long-lived responses watch it).
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Makes sure tenant `id` exists, creating it with the default limits on
    /// first use. Known tenants cost no query.
    pub(crate) async fn ensure_tenant(&self, id: &str) -> ApiResult<()> {
        if self
            .inner
            .tenants
            .lock()
            .expect("tenant cache")
            .contains(id)
        {
            return Ok(());
        }
        match self.store().get_tenant(id).await {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                tracing::info!(tenant = id, "creating tenant on first use");
                self.store()
                    .upsert_tenant(&Tenant::with_defaults(id))
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        self.inner
            .tenants
            .lock()
            .expect("tenant cache")
            .insert(id.to_string());
        Ok(())
    }
}
