//! The store code that is the same on every backend, written once and
//! generic over the sqlx database (`Sqlite`, `Postgres`).
//!
//! A backend's trait impls call these functions; what really differs per
//! database stays in the backend's folder and reaches the shared code
//! through two small traits:
//!
//! * [`Db`], implemented for the sqlx database type: how it binds the
//!   column kinds that differ (time, JSON), its boolean literal, whether
//!   writers lock rows, and the item search.
//! * [`Handle`], implemented for the store: where reads go and how a write
//!   transaction starts (`BEGIN IMMEDIATE` on SQLite's one writer, a pooled
//!   transaction on PostgreSQL).
//!
//! The functions spell out the sqlx bounds they need (`Encode`/`Type` of
//! the plain values they bind, `Executor` for a transaction's connection);
//! Rust does not carry such bounds over from a trait, so each function
//! states its own. They all hold for both backends.
//!
//! See `docs/storage.md` for what stays per database and why.

pub(crate) mod datasets;
pub(crate) mod items;
pub(crate) mod keys;
pub(crate) mod plugins;
pub(crate) mod results;
pub(crate) mod runs;
pub(crate) mod tenancy;
pub(crate) mod tenants;

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Database, Encode, IntoArguments, Pool, QueryBuilder, Transaction, Type};

use crate::error::StoreResult;
use crate::rows::StoredRow;

/// What differs between the databases below the SQL the shared code runs.
pub(crate) trait Db: Database<Arguments: IntoArguments<Self>, Row: StoredRow> {
    /// A point in time as bound (SQLite: INTEGER milliseconds since the
    /// epoch; PostgreSQL: `timestamptz`).
    type Time: for<'t> Encode<'t, Self> + Type<Self> + Send;
    /// A JSON value as bound (SQLite: compact TEXT; PostgreSQL: `jsonb`).
    type Json<'a>: Encode<'a, Self> + Type<Self> + Send;
    /// An optional JSON value as bound (NULL for `None`).
    type OptJson<'a>: Encode<'a, Self> + Type<Self> + Send;

    /// Whether a write transaction must lock the rows it changes
    /// (PostgreSQL: `FOR UPDATE` / `FOR SHARE`). SQLite's write transaction
    /// holds the database's only write lock, so a plain read is enough.
    const ROW_LOCKS: bool;
    /// The filter "item version `iv` is not a tombstone". SQLite needs the
    /// same expression as its partial index `item_versions_live`
    /// (`is_deleted = 0`); PostgreSQL has a real boolean. Shared SQL writes
    /// `{NOT_DELETED}` where it goes ([`with_not_deleted`]).
    const NOT_DELETED: &'static str;

    fn time(at: DateTime<Utc>) -> Self::Time;
    fn json(v: &Value) -> Self::Json<'_>;
    fn json_opt(v: Option<&Value>) -> Self::OptJson<'_>;
    /// Rows changed by a statement (sqlx has no generic accessor).
    fn rows_affected(done: &Self::QueryResult) -> u64;
    /// Appends ` AND <item version iv contains search>`: a case-insensitive
    /// substring match on the JSON text of `input` and `expected_output`,
    /// which the databases fold and render differently.
    fn push_search(qb: &mut QueryBuilder<Self>, search: &str);
}

/// A backend's store as the shared code sees it.
pub(crate) trait Handle: Sync {
    type Db: Db;
    /// The pool reads go through.
    fn reads(&self) -> &Pool<Self::Db>;
    /// A transaction for writing.
    fn begin_write(
        &self,
    ) -> impl Future<Output = StoreResult<Transaction<'static, Self::Db>>> + Send;
}

/// `sql` with every `{NOT_DELETED}` replaced by the database's tombstone
/// filter.
pub(crate) fn with_not_deleted<DB: Db>(sql: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql.replace("{NOT_DELETED}", DB::NOT_DELETED))
}
