//! What every handler shares: the store, the plugin catalog, the scheduler.

use std::sync::Arc;

use assay_runner::{Catalog, Scheduler};
use assay_store::Store;
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
    scheduler: Scheduler,
    options: ApiOptions,
    /// Cancelled when the server shuts down: event streams end.
    shutdown: CancellationToken,
    /// Event streams: one poller per run, caps.
    events: Arc<EventHub>,
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
                shutdown: CancellationToken::new(),
                events: Arc::new(EventHub::default()),
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

    /// The event streams' pollers and caps.
    pub fn events(&self) -> &Arc<EventHub> {
        &self.inner.events
    }

    /// Cancelled at shutdown (long-lived responses watch it).
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }
}
