//! How SQLite stores the column kinds that differ between databases: JSON
//! as TEXT, time as INTEGER milliseconds since the epoch (UTC), booleans as
//! INTEGER 0/1.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::StoreResult;
use crate::rows::{StoredRow, parse_json, plain_getters};
use crate::rules::from_ms;

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
