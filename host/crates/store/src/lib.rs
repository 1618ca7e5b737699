//! assay storage: datasets, items and their versions, runs, results, scores,
//! plugins and tenants, on SQLite (the embedded default) or PostgreSQL.
//!
//! [`connect`] picks the backend from the URL and applies the migrations
//! (`migrations/sqlite`, `migrations/postgres`). Everything else goes through
//! the [`Store`] trait, used as `Arc<dyn Store>`.
//!
//! Choices worth knowing:
//! * Dataset versions are integers: 0 on create, +1 per call that changes
//!   items (add / bulk add, update, delete / bulk delete) or a schema.
//!   Items are stored as SCD-2 rows, so a run pinned to version V sees exactly
//!   V's items, however the dataset changes later.
//! * Items are listed by `position` (insertion order, the dataset order)
//!   ascending (not newest first): the order a run processes them.
//! * Dataset names are unique per tenant.
//! * Deleting a dataset deletes its runs, results and scores too (refused
//!   while one of its runs is pending or running).
//! * Timestamps have millisecond precision on both backends.
//! * Item search is a case-insensitive substring match over the JSON text of
//!   `input` and `expectedOutput`. SQLite folds ASCII letters only and
//!   matches the compact JSON text (`{"a":1}`); PostgreSQL folds all letters
//!   and matches `jsonb`'s text (`{"a": 1}`), so searches for values behave
//!   the same, searches spanning JSON punctuation may not.
//! * Runs are executed at least once, results stored exactly once: a run is
//!   held through a lease (`claim_*`, `renew_lease`), `write_results` is
//!   fenced by it and idempotent on `(run, item)`, and `pending_items` lists
//!   what a resumed run still has to do. Lease expiry uses the machine's
//!   clock on SQLite and the database's clock on PostgreSQL.
//! * SQLite: WAL, `synchronous=NORMAL`, `busy_timeout` 5 s, foreign keys on;
//!   one writer connection (`BEGIN IMMEDIATE`) plus a read pool, so several
//!   processes can share a file. A file URL without `mode=` is created (with
//!   its directory) on first use.
//! * PostgreSQL: statements are planned with their parameters
//!   (`plan_cache_mode=force_custom_plan`), see BENCHMARKS.md for why.

pub mod cache;
mod error;
mod models;
pub mod network;
mod page;
pub mod postgres;
mod rows;
pub mod rules;
mod shared;
mod sql;
pub mod sqlite;
mod store;
pub mod tenancy;
mod usage;
pub mod validate;

use std::sync::Arc;

pub use cache::{
    CacheCleared, CachePut, CacheStats, CachedOutput, NewCachedOutput, OutputCacheStore,
};
pub use error::{StoreError, StoreResult};
pub use models::*;
pub use network::{
    GrantStore, MAX_SECRET_NAME, PluginGrant, SealedSecret, SecretInfo, SecretStore,
    check_secret_name,
};
pub use page::{DEFAULT_PER_PAGE, MAX_PER_PAGE};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use store::{
    Backend, DatasetStore, ItemStore, PluginStore, ResultStore, RunStore, Store, TenantStore,
};
pub use tenancy::{
    ApiKey, ApiKeyStore, Role, SHARED_TENANT, TenancyStore, TenantInfo, TenantLimits, TenantUsage,
};
pub use usage::TokenUsage;

/// Opens the store at `url` and applies pending migrations.
///
/// * `sqlite://path/to/file.db?mode=rwc` (created if missing), `sqlite::memory:`
/// * `postgres://user:pass@host:port/db` (or `postgresql://`)
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::Config(format!(
            "`{}`: expected sqlite:... or postgres://...",
            redact(url)
        )))
    }
}

/// A database URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Hands every stored result of a run to `visit`, page by page in the order
/// they were stored (`seq`), without holding more than one page.
pub async fn for_each_result_page<E: From<StoreError>>(
    store: &dyn Store,
    tenant: &str,
    run_id: &str,
    page_size: i64,
    mut visit: impl FnMut(Vec<RunResult>) -> Result<(), E>,
) -> Result<(), E> {
    let mut after = 0i64;
    loop {
        let page = store
            .results_after_seq(tenant, run_id, after, page_size)
            .await?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        after = *last;
        visit(page.into_iter().map(|(_, r)| r).collect())?;
    }
}
