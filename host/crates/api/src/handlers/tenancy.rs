//! `/api/tenant` and `/api/keys`: the caller's tenant (limits, usage) and,
//! for its admins, its API keys. Tenants themselves and their limits are
//! the operator's (`assay tenant ...`), never set through the API.

use assay_store::{ApiKey, Role};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

/// `GET /api/tenant`: who the caller is and what its tenant may use.
pub async fn status(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let limits = s.store().tenant_limits(&caller.tenant).await?;
    let usage = s.store().tenant_usage(&caller.tenant).await?;
    Ok(Json(json!({
        "id": caller.tenant,
        "role": caller.role,
        "keyId": caller.key_id,
        "limits": limits,
        "usage": usage,
    })))
}

/// `GET /api/keys`: the tenant's keys, oldest first (revoked ones too).
pub async fn list_keys(State(s): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let keys = s.store().list_api_keys(Some(&caller.tenant)).await?;
    Ok(Json(json!({
        "keys": keys,
        "pagination": {"total": keys.len(), "page": 0, "perPage": keys.len(), "hasMore": false},
    })))
}

/// Body of `POST /api/keys`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewKeyBody {
    /// `viewer`, `member` (default) or `admin`.
    #[serde(default)]
    pub role: Option<Role>,
    /// A label.
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /api/keys`: a new key of the caller's tenant; the token is in this
/// answer and nowhere else.
pub async fn create_key(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewKeyBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let role = body.role.unwrap_or(Role::Member);
    let (key, token) =
        assay_store::tenancy::issue_api_key(s.store().as_ref(), &caller.tenant, role, body.name)
            .await?;
    tracing::info!(tenant = %caller.tenant, key = %key.id, %role, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(json!({"key": key, "token": token})),
    ))
}

/// `DELETE /api/keys/{keyId}`: another tenant's key is a 404.
pub async fn revoke_key(
    State(s): State<AppState>,
    caller: Caller,
    ApiPath(key_id): ApiPath<String>,
) -> ApiResult<Json<ApiKey>> {
    let key = s
        .store()
        .revoke_api_key(Some(&caller.tenant), &key_id)
        .await?;
    tracing::info!(tenant = %caller.tenant, key = %key.id, "API key revoked");
    Ok(Json(key))
}
