//! How PostgreSQL stores the column kinds that differ between databases:
//! JSON as `jsonb`, time as `timestamptz`, booleans as `boolean`; and how
//! the shared code ([`crate::shared`]) reaches this backend.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnection, PgPool, PgQueryResult, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row, Transaction};

use super::PostgresStore;
use crate::error::StoreResult;
use crate::rows::{StoredRow, plain_getters};
use crate::shared::{Db, Handle};

impl StoredRow for PgRow {
    plain_getters!();

    fn json_opt(&self, col: &str) -> StoreResult<Option<Value>> {
        Ok(self.try_get::<Option<Json<Value>>, _>(col)?.map(|j| j.0))
    }
    fn time(&self, col: &str) -> StoreResult<DateTime<Utc>> {
        Ok(self.try_get(col)?)
    }
    fn time_opt(&self, col: &str) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self.try_get(col)?)
    }
}

/// A JSON value to bind to a `jsonb` parameter.
pub fn j(v: &Value) -> Json<&Value> {
    Json(v)
}

/// An optional JSON value to bind to a `jsonb` parameter.
pub fn jo(v: Option<&Value>) -> Option<Json<&Value>> {
    v.map(Json)
}

impl Db for Postgres {
    type Time = DateTime<Utc>;
    type Json<'a> = Json<&'a Value>;
    type OptJson<'a> = Option<Json<&'a Value>>;

    type Conn<'c> = &'c mut PgConnection;

    const ROW_LOCKS: bool = true;
    const NOT_DELETED: &'static str = "NOT iv.is_deleted";

    fn conn(c: &mut PgConnection) -> &mut PgConnection {
        c
    }
    fn time(at: DateTime<Utc>) -> DateTime<Utc> {
        at
    }
    fn json(v: &Value) -> Json<&Value> {
        j(v)
    }
    fn json_opt(v: Option<&Value>) -> Option<Json<&Value>> {
        jo(v)
    }
    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
    fn push_search(qb: &mut QueryBuilder<Postgres>, search: &str) {
        super::items::push_search(qb, search);
    }
}

impl Handle for PostgresStore {
    type Db = Postgres;
    type Reads<'a> = &'a PgPool;

    fn reads(&self) -> &PgPool {
        &self.pool
    }
    fn begin_write(
        &self,
    ) -> impl Future<Output = StoreResult<Transaction<'static, Postgres>>> + Send {
        self.tx()
    }
}
