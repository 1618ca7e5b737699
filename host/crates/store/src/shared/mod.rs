//! The store code that is the same on every backend, written once and
//! generic over the sqlx database (`Sqlite`, `Postgres`).
//!
//! A backend's trait impls call these functions; what really differs per
//! database stays in the backend's folder and reaches the shared code
//! through two small traits:
//!
//! * [`Db`], implemented for the sqlx database type: how it binds the
//!   column kinds that differ (time, JSON), its tombstone filter, whether
//!   writers lock rows, and the item search.
//! * [`Handle`], implemented for the store: where reads go and how a write
//!   transaction starts (`BEGIN IMMEDIATE` on SQLite's one writer, a pooled
//!   transaction on PostgreSQL).
//!
//! Generic sqlx code usually repeats bounds on every function (`Encode` and
//! `Type` for each value bound, `Executor` for a transaction's connection),
//! because Rust does not carry a trait's where-clauses over to its users.
//! Here they are stated once: as supertraits of [`Db`] (`Binds`, used
//! through `.arg()` / `.push_arg()` instead of `.bind()` / `.push_bind()`)
//! and as associated types ([`Db::Conn`], [`Handle::Reads`]), which are
//! implied wherever `DB: Db` holds.
//!
//! See `docs/storage.md` for what stays per database and why.

pub(crate) mod cache;
pub(crate) mod datasets;
pub(crate) mod grants;
pub(crate) mod items;
pub(crate) mod keys;
pub(crate) mod plugins;
pub(crate) mod results;
pub(crate) mod runs;
pub(crate) mod secrets;
pub(crate) mod tenancy;
pub(crate) mod tenants;

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::query::Query;
use sqlx::query_builder::Separated;
use sqlx::{Database, Encode, Executor, IntoArguments, QueryBuilder, Transaction, Type};

use crate::error::StoreResult;
use crate::models::{Page, Paged};
use crate::rows::StoredRow;

/// What differs between the databases below the SQL the shared code runs.
///
/// The `Binds` supertraits name the plain values the shared code binds
/// (text, integers, booleans, bytes); as supertraits they hold wherever
/// `DB: Db` does, so the shared functions need no sqlx bounds of their own.
pub(crate) trait Db:
    Database<Arguments: IntoArguments<Self>, Row: StoredRow>
    + for<'t> Binds<'t, &'t str>
    + for<'t> Binds<'t, Option<&'t str>>
    + for<'t> Binds<'t, &'t [u8]>
    + for<'t> Binds<'t, i64>
    + for<'t> Binds<'t, bool>
    + for<'t> Binds<'t, Option<f64>>
{
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

    /// A transaction's connection as an executor. (Plain `&mut *tx` works
    /// too, but only with an `Executor` bound on every generic function;
    /// this associated type carries it.)
    type Conn<'c>: Executor<'c, Database = Self>;
    fn conn(c: &mut Self::Connection) -> Self::Conn<'_>;

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

/// A value of type `T` that the database encodes, bound to a statement.
/// Implemented for every such pair; use it through [`Arg`].
pub(crate) trait Binds<'t, T>: Database {
    fn bind_query<'q>(
        q: Query<'q, Self, Self::Arguments>,
        v: T,
    ) -> Query<'q, Self, Self::Arguments>;
    fn bind_builder(qb: &mut QueryBuilder<Self>, v: T);
    fn bind_separated(sep: &mut Separated<'_, Self, &'static str>, v: T);
}

impl<'t, DB: Database, T: Encode<'t, DB> + Type<DB>> Binds<'t, T> for DB {
    fn bind_query<'q>(q: Query<'q, DB, DB::Arguments>, v: T) -> Query<'q, DB, DB::Arguments> {
        q.bind(v)
    }
    fn bind_builder(qb: &mut QueryBuilder<DB>, v: T) {
        qb.push_bind(v);
    }
    fn bind_separated(sep: &mut Separated<'_, DB, &'static str>, v: T) {
        sep.push_bind(v);
    }
}

/// `.arg(value)`: sqlx's `bind` / `push_bind` for generic code, with the
/// value's bounds taken from [`Db`]'s `Binds` supertraits.
pub(crate) trait Arg<DB: Database> {
    fn arg<'t, T>(self, v: T) -> Self
    where
        DB: Binds<'t, T>;
}

impl<DB: Database> Arg<DB> for Query<'_, DB, DB::Arguments> {
    fn arg<'t, T>(self, v: T) -> Self
    where
        DB: Binds<'t, T>,
    {
        DB::bind_query(self, v)
    }
}

/// `.push_arg(value)` on a query builder or a `VALUES` tuple (see [`Arg`]).
pub(crate) trait PushArg<DB: Database> {
    fn push_arg<'t, T>(&mut self, v: T) -> &mut Self
    where
        DB: Binds<'t, T>;
}

impl<DB: Database> PushArg<DB> for QueryBuilder<DB> {
    fn push_arg<'t, T>(&mut self, v: T) -> &mut Self
    where
        DB: Binds<'t, T>,
    {
        DB::bind_builder(self, v);
        self
    }
}

impl<DB: Database> PushArg<DB> for Separated<'_, DB, &'static str> {
    fn push_arg<'t, T>(&mut self, v: T) -> &mut Self
    where
        DB: Binds<'t, T>,
    {
        DB::bind_separated(self, v);
        self
    }
}

/// A backend's store as the shared code sees it.
pub(crate) trait Handle: Sync {
    type Db: Db;
    /// The pool reads go through, as an executor.
    type Reads<'a>: Executor<'a, Database = Self::Db>
    where
        Self: 'a;
    fn reads(&self) -> Self::Reads<'_>;
    /// A transaction for writing.
    fn begin_write(
        &self,
    ) -> impl Future<Output = StoreResult<Transaction<'static, Self::Db>>> + Send;
}

/// A statement with its leading binds, as [`paged`] takes them.
pub(crate) type Stmt<DB> = Query<'static, DB, <DB as Database>::Arguments>;

/// One page of rows: `count_sql` gives the total and `list_sql` the rows,
/// both after the same leading binds (`filter`); the list's last two
/// parameters are the page's LIMIT and OFFSET.
pub(crate) async fn paged<DB, S, T>(
    s: &S,
    (count_sql, list_sql): (&'static str, &'static str),
    filter: impl Fn(Stmt<DB>) -> Stmt<DB>,
    page: Page,
    decode: impl Fn(&DB::Row) -> StoreResult<T>,
) -> StoreResult<Paged<T>>
where
    DB: Db,
    S: Handle<Db = DB>,
{
    let total = filter(sqlx::query(count_sql))
        .fetch_one(s.reads())
        .await?
        .int_at(0)?;
    let rows = filter(sqlx::query(list_sql))
        .arg(page.limit())
        .arg(page.offset())
        .fetch_all(s.reads())
        .await?;
    let items = rows.iter().map(decode).collect::<StoreResult<_>>()?;
    Ok(page.wrap(items, total))
}

/// `sql` with every `{NOT_DELETED}` replaced by the database's tombstone
/// filter.
pub(crate) fn with_not_deleted<DB: Db>(sql: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql.replace("{NOT_DELETED}", DB::NOT_DELETED))
}
