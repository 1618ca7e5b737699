//! How PostgreSQL stores the column kinds that differ between databases:
//! JSON as `jsonb`, time as `timestamptz`, booleans as `boolean`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use crate::error::StoreResult;
use crate::rows::{StoredRow, plain_getters};

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
