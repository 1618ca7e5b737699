//! Route handlers, one module per resource.

pub mod cache;
pub mod datasets;
pub mod events;
pub mod experiments;
pub mod items;
pub mod plugins;
pub mod runs;
pub mod scores;
pub mod secrets;
pub mod system;
pub mod tenancy;

use assay_store::Paged;
use axum::Json;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// A list answer: `{<key>: [...], pagination: {total, page, perPage, hasMore}}`.
pub(crate) fn list_body<T: Serialize>(key: &str, paged: Paged<T>) -> Result<Json<Value>, ApiError> {
    let items = serde_json::to_value(&paged.items).map_err(ApiError::internal)?;
    paged_body(key, items, &paged)
}

/// [`list_body`] with each row shown through `view` (see [`crate::views`]).
pub(crate) fn list_view<T>(
    key: &str,
    paged: Paged<T>,
    view: impl Fn(&T) -> Result<Value, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let items = paged
        .items
        .iter()
        .map(view)
        .collect::<Result<Vec<_>, _>>()?;
    paged_body(key, Value::Array(items), &paged)
}

fn paged_body<T>(key: &str, items: Value, paged: &Paged<T>) -> Result<Json<Value>, ApiError> {
    let mut body = Map::new();
    body.insert(key.to_string(), items);
    body.insert(
        "pagination".into(),
        json!({
            "total": paged.total,
            "page": paged.page,
            "perPage": paged.per_page,
            "hasMore": paged.has_more,
        }),
    );
    Ok(Json(Value::Object(body)))
}

/// `{success: true}`, Mastra's answer to a delete.
pub(crate) fn success() -> Json<Value> {
    Json(json!({ "success": true }))
}
