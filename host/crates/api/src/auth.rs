//! Who is calling: every `/api` route authenticates its caller here (one
//! middleware, [`authorize`], installed by the router from the route
//! table's [`Access`]) and handlers read the result through
//! [`crate::extract::TenantId`] and [`Caller`].
//!
//! * `Authorization: Bearer <token>`: an API key; the request acts as the
//!   key's tenant with the key's role. Missing, unknown or revoked: 401.
//! * [`AuthMode::KeysOrTenantHeader`] (`assay serve --trust-tenant-header`):
//!   a request carrying `x-assay-tenant` acts as that (existing) tenant,
//!   with the role in `x-assay-role` (default `member`); an authenticating
//!   proxy in front must set or strip both headers.
//! * [`AuthMode::Disabled`] (`assay serve --no-auth`, loopback only): every
//!   request acts as the `default` tenant with the `admin` role.
//!
//! A role too weak for the route is a 403 naming the role needed.

use assay_store::{DEFAULT_TENANT, Role};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// The header naming the tenant (honoured only in
/// [`AuthMode::KeysOrTenantHeader`]).
pub const TENANT_HEADER: &str = "x-assay-tenant";
/// The header naming the role of a trusted-header request.
pub const ROLE_HEADER: &str = "x-assay-role";

/// How the server learns who calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// API keys only (`assay serve`'s default).
    Keys,
    /// API keys, or the tenant (and role) headers set by a trusted proxy.
    KeysOrTenantHeader,
    /// No authentication: every request is the `default` tenant's admin.
    /// Refused on any address but loopback. The library default, so tests
    /// and embedders on loopback need no key.
    #[default]
    Disabled,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials (`/health`).
    Open,
    /// A caller whose role is at least this one.
    Role(Role),
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant the request acts for.
    pub tenant: String,
    /// What it may do.
    pub role: Role,
    /// The API key used (`None`: trusted header or no auth).
    pub key_id: Option<String>,
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The middleware: authenticates the caller, checks its role against
/// `access`, and hands the [`Caller`] to the handler.
pub async fn authorize(
    State(state): State<AppState>,
    access: Access,
    mut request: Request,
    next: Next,
) -> Response {
    let Access::Role(required) = access else {
        return next.run(request).await;
    };
    let caller = match identify(&state, request.headers()).await {
        Ok(c) => c,
        Err(e) => return challenge(e),
    };
    if !caller.role.allows(required) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this needs the `{required}` role; the caller is a `{}` of tenant {}",
                caller.role, caller.tenant
            ),
        )
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// A 401 with the `WWW-Authenticate` challenge.
fn challenge(e: ApiError) -> Response {
    let unauthorized = e.status == StatusCode::UNAUTHORIZED;
    let mut response = e.into_response();
    if unauthorized {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"assay\""),
        );
    }
    response
}

async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let mode = state.options().auth;
    if mode == AuthMode::Disabled {
        return Ok(Caller {
            tenant: DEFAULT_TENANT.to_string(),
            role: Role::Admin,
            key_id: None,
        });
    }
    if mode == AuthMode::KeysOrTenantHeader
        && let Some(v) = headers.get(TENANT_HEADER)
    {
        return trusted_header(state, v, headers.get(ROLE_HEADER)).await;
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "missing `Authorization: Bearer <API key>` (create a key with `assay key create`)",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <API key>`"))?;
    let key = assay_store::tenancy::authenticate(state.store().as_ref(), token)
        .await?
        .ok_or_else(|| unauthorized("the API key is unknown or revoked"))?;
    Ok(Caller {
        tenant: key.tenant_id,
        role: key.role,
        key_id: Some(key.id),
    })
}

async fn trusted_header(
    state: &AppState,
    tenant: &HeaderValue,
    role: Option<&HeaderValue>,
) -> Result<Caller, ApiError> {
    let tenant = tenant.to_str().unwrap_or("");
    if !assay_store::tenancy::valid_tenant_name(tenant) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            format!(
                "`{TENANT_HEADER}` must be 1 to 64 characters of A-Z, a-z, 0-9, `.`, `_` or `-`"
            ),
        ));
    }
    let role = match role {
        None => Role::Member,
        Some(v) => v.to_str().ok().and_then(Role::parse).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_role",
                format!("`{ROLE_HEADER}` must be `viewer`, `member` or `admin`"),
            )
        })?,
    };
    match state.store().tenant_limits(tenant).await {
        Ok(_) => Ok(Caller {
            tenant: tenant.to_string(),
            role,
            key_id: None,
        }),
        Err(assay_store::StoreError::NotFound { .. }) => Err(unauthorized(format!(
            "tenant {tenant} does not exist (an operator creates it with `assay tenant create`)"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Whether `addr` is a loopback address (where `--no-auth` is allowed).
pub fn is_loopback(addr: &std::net::SocketAddr) -> bool {
    addr.ip().is_loopback()
}
