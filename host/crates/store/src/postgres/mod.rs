//! The PostgreSQL backend.
//!
//! Transactions run at READ COMMITTED. Every mutation of a dataset or a run
//! first locks its row (`FOR UPDATE`), which serializes version bumps,
//! fencing checks and claims; `claim_next_run` uses `FOR UPDATE SKIP LOCKED`
//! so that several hosts sharing one database never take the same run.
//! Lease expiry uses the database clock (`now()`), so hosts with skewed
//! clocks agree.

mod cache;
mod chunks;
mod claim;
mod datasets;
mod grants;
mod items;
mod keys;
mod plugins;
mod results;
mod rows;
mod runs;
mod secrets;
mod tenancy;
mod tenants;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use crate::error::StoreResult;
use crate::store::Backend;

/// Connections per process.
const POOL_SIZE: u32 = 10;

/// The PostgreSQL implementation of [`crate::Store`].
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `postgres://...` and applies the migrations (under
    /// sqlx's advisory lock, so concurrent starts are safe).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        // Plan every statement with its parameters and the tables' current
        // size. A generic plan cached while a table was small (e.g. `results`
        // at the start of the first run) would otherwise stay a sequential
        // scan for the life of the connection; planning costs well under a
        // millisecond here.
        let opts =
            PgConnectOptions::from_str(url)?.options([("plan_cache_mode", "force_custom_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts)
            .await?;
        sqlx::migrate!("../../../migrations/postgres")
            .run(&pool)
            .await?;
        Ok(Self { pool })
    }

    /// A transaction.
    async fn tx(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

#[async_trait]
impl Backend for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
