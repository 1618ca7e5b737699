//! How SQLite stores the column kinds that differ between databases: JSON
//! as TEXT, time as INTEGER milliseconds since the epoch (UTC), booleans as
//! INTEGER 0/1; and how the shared code ([`crate::shared`]) reaches this
//! backend.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteQueryResult, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};

use super::SqliteStore;
use crate::error::StoreResult;
use crate::rows::{StoredRow, parse_json, plain_getters};
use crate::rules::{from_ms, to_ms};
use crate::shared::{Db, Handle};

impl StoredRow for SqliteRow {
    plain_getters!();

    fn json_opt(&self, col: &str) -> StoreResult<Option<Value>> {
        self.try_get::<Option<String>, _>(col)?
            .map(|t| parse_json(&t))
            .transpose()
    }
    fn time(&self, col: &str) -> StoreResult<DateTime<Utc>> {
        Ok(from_ms(self.try_get(col)?))
    }
    fn time_opt(&self, col: &str) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self.try_get::<Option<i64>, _>(col)?.map(from_ms))
    }
}

/// A value as JSON text.
pub fn to_json(v: &Value) -> String {
    v.to_string()
}

/// An optional value as JSON text.
pub fn to_json_opt(v: Option<&Value>) -> Option<String> {
    v.map(Value::to_string)
}

impl Db for Sqlite {
    type Time = i64;
    type Json<'a> = String;
    type OptJson<'a> = Option<String>;

    type Conn<'c> = &'c mut SqliteConnection;

    const ROW_LOCKS: bool = false;
    const NOT_DELETED: &'static str = "iv.is_deleted = 0";

    fn conn(c: &mut SqliteConnection) -> &mut SqliteConnection {
        c
    }
    fn time(at: DateTime<Utc>) -> i64 {
        to_ms(at)
    }
    fn json(v: &Value) -> String {
        to_json(v)
    }
    fn json_opt(v: Option<&Value>) -> Option<String> {
        to_json_opt(v)
    }
    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
    fn push_search(qb: &mut QueryBuilder<Sqlite>, search: &str) {
        super::items::push_search(qb, search);
    }
}

impl Handle for SqliteStore {
    type Db = Sqlite;
    type Reads<'a> = &'a SqlitePool;

    fn reads(&self) -> &SqlitePool {
        &self.reader
    }
    fn begin_write(
        &self,
    ) -> impl Future<Output = StoreResult<Transaction<'static, Sqlite>>> + Send {
        self.write_tx()
    }
}
