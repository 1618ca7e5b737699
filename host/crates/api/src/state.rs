//! What every handler shares: the store, the plugin catalog and, on a node
//! that executes runs, the scheduler.

use std::sync::Arc;

use assay_runner::{Catalog, RunError, Scheduler};
use assay_store::{Run, Store};
use tokio_util::sync::CancellationToken;

use crate::config::ApiOptions;
use crate::event_hub::EventHub;

/// Shared state of the router. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    /// `None` on an API-only node (`assay serve --no-execute`): runs are
    /// executed by other processes on the same database.
    scheduler: Option<Scheduler>,
    options: ApiOptions,
    /// Cancelled when the server shuts down: event streams end.
    shutdown: CancellationToken,
    /// Event streams: one poller per run, caps.
    events: Arc<EventHub>,
}

impl AppState {
    /// State over `store` and a running `scheduler` (whose catalog serves
    /// the plugin routes): a node that executes the runs it creates.
    pub fn new(store: Arc<dyn Store>, scheduler: Scheduler, options: ApiOptions) -> Self {
        let catalog = scheduler.catalog().clone();
        Self::with_parts(store, catalog, Some(scheduler), options)
    }

    /// State of an API-only node: runs are created, cancelled and read
    /// here, and executed by another process (`assay worker`) that claims
    /// them from the same database.
    pub fn without_scheduler(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        options: ApiOptions,
    ) -> Self {
        Self::with_parts(store, catalog, None, options)
    }

    fn with_parts(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        scheduler: Option<Scheduler>,
        options: ApiOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                catalog,
                scheduler,
                options,
                shutdown: CancellationToken::new(),
                events: Arc::new(EventHub::default()),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The scheduler that executes runs in this process (`None` on an
    /// API-only node).
    pub fn scheduler(&self) -> Option<&Scheduler> {
        self.inner.scheduler.as_ref()
    }

    /// Whether this process executes runs.
    pub fn executes_runs(&self) -> bool {
        self.inner.scheduler.is_some()
    }

    /// Runs executing in this process now (always 0 on an API-only node).
    pub fn active_runs(&self) -> usize {
        self.scheduler().map_or(0, Scheduler::active_runs)
    }

    /// Tells this process's scheduler a run was just created. Without one,
    /// the workers find it on their next poll of the database.
    pub fn wake_scheduler(&self) {
        if let Some(scheduler) = self.scheduler() {
            scheduler.wake();
        }
    }

    /// Cancels a run: the request is recorded in the store (a pending run
    /// becomes `cancelled` at once; the process executing a running one
    /// sees the request on its next lease renewal and stops it) and, when
    /// the run executes in this process, it is cancelled at once.
    pub async fn cancel_run(&self, tenant: &str, run_id: &str) -> Result<Run, RunError> {
        match self.scheduler() {
            Some(scheduler) => scheduler.cancel(tenant, run_id).await,
            None => Ok(self.store().request_cancel(tenant, run_id).await?),
        }
    }

    /// The plugin catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.inner.catalog
    }

    /// Router settings.
    pub fn options(&self) -> &ApiOptions {
        &self.inner.options
    }

    /// The event streams' pollers and caps.
    pub fn events(&self) -> &Arc<EventHub> {
        &self.inner.events
    }

    /// Cancelled at shutdown (long-lived responses watch it).
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }
}
