//! `/api/plugins`: list, upload (raw `.wasm`), inspect, delete.

use assay_plugin_host::PluginReport;
use assay_store::{Paged, PluginRecord, SHARED_TENANT, StoreError};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery, PageQuery, TenantId, body_rejection, media_type};
use crate::handlers::{list_body, success};
use crate::state::AppState;

/// Media types accepted for a plugin upload.
pub const WASM_MEDIA_TYPES: [&str; 2] = ["application/wasm", "application/octet-stream"];

/// A plugin record as the API shows it: `shared` says whether it is a
/// shared plugin (shipped or registered by the operator: read-only) or the
/// tenant's own.
fn plugin_json(record: &PluginRecord) -> ApiResult<Value> {
    let mut body = serde_json::to_value(record).map_err(ApiError::internal)?;
    body["shared"] = json!(record.tenant_id == SHARED_TENANT);
    Ok(body)
}

/// `GET /api/plugins`: the tenant's own plugins and the shared ones, by id.
pub async fn list(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Value>> {
    let page = s.store().list_visible_plugins(&tenant, q.page()).await?;
    let items = page
        .items
        .iter()
        .map(plugin_json)
        .collect::<ApiResult<Vec<_>>>()?;
    list_body(
        "plugins",
        Paged {
            items,
            total: page.total,
            page: page.page,
            per_page: page.per_page,
            has_more: page.has_more,
        },
    )
}

/// `POST /api/plugins`: the body is the component itself
/// (`Content-Type: application/wasm` or `application/octet-stream`). It is
/// loaded in the sandbox (which validates it) and registered under the id
/// its `info` reports, in the tenant's namespace, replacing the tenant's
/// plugin with the same id. 201 with the record; 422 with the loader's
/// message when it is not a usable plugin (or a plugin limit is reached);
/// 409 naming the id when a shared plugin has it.
pub async fn upload(
    State(s): State<AppState>,
    tenant: TenantId,
    request: Request,
) -> ApiResult<(StatusCode, Json<Value>)> {
    match media_type(request.headers()) {
        Some(t) if WASM_MEDIA_TYPES.contains(&t.as_str()) => {}
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "expected the raw component with `Content-Type: application/wasm` (or \
                     application/octet-stream), got {}",
                    other.as_deref().unwrap_or("no content type")
                ),
            ));
        }
    }
    // Refuse an oversized component before reading it when the client says
    // its size, and after reading it (within the body limit) otherwise.
    let limit = s.catalog().host().config().max_component_bytes;
    let too_large = |size: usize| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the component is {size} bytes, over the upload limit of {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared.filter(|size| *size > limit) {
        // Nothing is buffered or compiled, but the body is read and
        // dropped (within the body limit) so that the client, still
        // sending, gets this answer rather than a reset connection.
        if size <= s.options().body_limit_bytes {
            drain(request.into_body()).await;
        }
        return Err(too_large(size));
    }
    let bytes = Bytes::from_request(request, &s)
        .await
        .map_err(|r| body_rejection(r, &s))?;
    if bytes.len() > limit {
        return Err(too_large(bytes.len()));
    }
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty: send the .wasm component",
        ));
    }
    let record = s
        .catalog()
        .register_bytes(&tenant, bytes.to_vec())
        .await
        .map_err(|e| match e {
            assay_runner::RunError::PluginLoad { message, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_plugin", message)
            }
            other => other.into(),
        })?;
    tracing::info!(tenant = %tenant.0, plugin = %record.id, digest = %record.digest, "plugin registered");
    Ok((StatusCode::CREATED, Json(plugin_json(&record)?)))
}

/// `GET /api/plugins/{pluginId}`: the record plus what the component
/// declares (`world`, `imports`, `exports`).
pub async fn get(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(plugin_id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let record = s.catalog().visible_plugin(&tenant, &plugin_id).await?;
    let mut body = plugin_json(&record)?;
    match s.catalog().load_record(&tenant, &record).await {
        Ok(plugin) => {
            let report = PluginReport::from_plugin(&plugin);
            body["world"] = json!(report.world);
            body["imports"] = json!(report.imports);
            body["exports"] = json!(report.exports);
        }
        Err(e) => body["loadError"] = json!(e.to_string()),
    }
    body["networkGrant"] = crate::handlers::secrets::grant_of(&s, &tenant, &plugin_id)
        .await?
        .unwrap_or(Value::Null);
    Ok(Json(body))
}

/// Reads a request body to its end, keeping none of it.
async fn drain(body: axum::body::Body) {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

/// `DELETE /api/plugins/{pluginId}`.
pub async fn delete(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(plugin_id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    match s.catalog().delete_plugin(&tenant, &plugin_id).await {
        Err(StoreError::NotFound { .. })
            if s.store()
                .get_plugin(SHARED_TENANT, &plugin_id)
                .await
                .is_ok() =>
        {
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "plugin `{plugin_id}` is a shared plugin (shipped or registered by the \
                     operator): a tenant cannot delete it"
                ),
            ))
        }
        Err(e) => Err(e.into()),
        Ok(()) => Ok(success()),
    }
}
