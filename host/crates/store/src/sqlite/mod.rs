//! The SQLite backend: one file in WAL mode (or an in-memory database).
//!
//! Writes go through a pool of exactly one connection and start with
//! `BEGIN IMMEDIATE`, so a write transaction takes SQLite's write lock up
//! front (no deadlock when a read transaction would later upgrade) and waits
//! up to `busy_timeout` for another process sharing the file. Reads use a
//! separate pool; WAL lets them run while the writer works.

mod cache;
mod chunks;
mod claim;
mod datasets;
mod file;
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
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::error::{StoreError, StoreResult};
use crate::store::Backend;

/// How long a statement waits for a lock held by another connection or
/// process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections for a file database.
const READ_POOL_SIZE: u32 = 4;

/// The SQLite implementation of [`crate::Store`].
#[derive(Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (`sqlite://path?mode=rwc` creates the file) or creates
    /// (`sqlite::memory:`) a database and applies the migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let mut opts = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let in_memory = is_in_memory(url);
        // Zero set-up: without an explicit `mode=`, a file database and its
        // directory are created on first use. Whatever creates it (that, or
        // `mode=rwc`), the file is made private to the user first.
        let creates = !url.contains("mode=") || url.contains("mode=rwc");
        if !in_memory && creates {
            if !url.contains("mode=") {
                opts = opts.create_if_missing(true);
            }
            file::create_private(opts.get_filename())?;
        }
        // Processes opening one file take turns from the first connection
        // to the end of the migrations: the first connection switches a new
        // file to WAL, which SQLite may refuse with "database is locked"
        // (without waiting out the busy timeout) while another process
        // opens the same file.
        let _turn = match in_memory {
            true => None,
            false => {
                let path = opts.get_filename().to_path_buf();
                let lock = tokio::task::spawn_blocking(move || file::MigrationLock::acquire(&path))
                    .await
                    .map_err(|e| {
                        StoreError::Config(format!("waiting for the migration lock: {e}"))
                    })??;
                Some(lock)
            }
        };
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // An in-memory database lives as long as one connection to it.
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("../../../migrations/sqlite")
            .run(&writer)
            .await?;
        // An in-memory database cannot be shared safely between connections
        // (shared-cache table locks are not covered by busy_timeout): read
        // through the single writer connection too.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READ_POOL_SIZE)
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(opts)
                .await?
        };
        Ok(Self { writer, reader })
    }

    /// A write transaction holding SQLite's write lock.
    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

#[async_trait]
impl Backend for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }
}
