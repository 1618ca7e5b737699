//! `/api/secrets` and `/api/plugins/{pluginId}/grant`: a tenant's secrets
//! (write-only: no answer ever carries a value) and its plugins' network
//! grants. See docs/secrets.md.

use assay_plugin_host::NetworkGrant;
use assay_runner::SecretVault;
use assay_store::{PluginGrant, SecretInfo};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, TenantId};
use crate::handlers::success;
use crate::state::AppState;

/// `GET /api/secrets`: names and times, never values.
pub async fn list(State(s): State<AppState>, tenant: TenantId) -> ApiResult<Json<Value>> {
    let secrets = s.store().list_secrets(&tenant).await?;
    Ok(Json(json!({
        "secrets": secrets,
        "pagination": {"total": secrets.len(), "page": 0, "perPage": secrets.len(), "hasMore": false},
    })))
}

/// Body of `PUT /api/secrets/{name}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretBody {
    value: String,
}

/// `PUT /api/secrets/{name}`: sets or replaces; answers the name and times.
pub async fn put(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<SecretBody>,
) -> ApiResult<Json<SecretInfo>> {
    let Some(key) = s.options().secret_key.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_secret_key",
            "this server has no secret key configured (--secret-key-file or ASSAY_SECRET_KEY)",
        ));
    };
    assay_store::check_secret_name(&name)?;
    let vault = SecretVault::new(s.store().clone(), key);
    let info = vault
        .set(&caller.tenant, &name, &body.value)
        .await
        .map_err(|e| match e {
            assay_runner::SecretError::Store(e) => ApiError::from(e),
            other => ApiError::invalid_field("value", other.to_string()),
        })?;
    tracing::info!(tenant = %caller.tenant, secret = %name, "secret set");
    Ok(Json(info))
}

/// `DELETE /api/secrets/{name}`.
pub async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    s.store().delete_secret(&caller.tenant, &name).await?;
    tracing::info!(tenant = %caller.tenant, secret = %name, "secret deleted");
    Ok(success())
}

/// A stored grant as the API shows it.
fn grant_json(g: &PluginGrant) -> ApiResult<Value> {
    let grant: NetworkGrant = serde_json::from_str(&g.grant_json).map_err(ApiError::internal)?;
    Ok(json!({
        "pluginId": g.plugin_id,
        "grant": grant,
        "grantedBy": g.granted_by,
        "updatedAt": g.updated_at,
    }))
}

/// The grant of a plugin the tenant sees, if any (for the plugin's GET).
pub async fn grant_of(s: &AppState, tenant: &str, plugin_id: &str) -> ApiResult<Option<Value>> {
    match s.store().get_plugin_grant(tenant, plugin_id).await? {
        Some(g) => Ok(Some(grant_json(&g)?["grant"].clone())),
        None => Ok(None),
    }
}

/// `GET /api/plugins/{pluginId}/grant`: 404 when the plugin has none.
pub async fn get_grant(
    State(s): State<AppState>,
    tenant: TenantId,
    ApiPath(plugin_id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    s.catalog().visible_plugin(&tenant, &plugin_id).await?;
    match s.store().get_plugin_grant(&tenant, &plugin_id).await? {
        Some(g) => Ok(Json(grant_json(&g)?)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("plugin `{plugin_id}` has no network grant"),
        )),
    }
}

/// `PUT /api/plugins/{pluginId}/grant`: sets or replaces the grant; the
/// body is a `NetworkGrant` (an invalid host is a 400 naming it).
pub async fn put_grant(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(plugin_id): ApiPath<String>,
    ApiJson(grant): ApiJson<NetworkGrant>,
) -> ApiResult<Json<Value>> {
    let text = serde_json::to_string(&grant).map_err(ApiError::internal)?;
    let by = match &caller.key_id {
        Some(id) => format!("key:{id}"),
        None => "api".to_string(),
    };
    let stored = s
        .store()
        .set_plugin_grant(&caller.tenant, &plugin_id, &text, &by)
        .await?;
    tracing::info!(tenant = %caller.tenant, plugin = %plugin_id, hosts = %grant.granted_list(), "network grant set");
    Ok(Json(grant_json(&stored)?))
}

/// `DELETE /api/plugins/{pluginId}/grant`.
pub async fn delete_grant(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(plugin_id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    s.store()
        .delete_plugin_grant(&caller.tenant, &plugin_id)
        .await?;
    tracing::info!(tenant = %caller.tenant, plugin = %plugin_id, "network grant revoked");
    Ok(success())
}
