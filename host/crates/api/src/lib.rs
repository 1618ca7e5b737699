//! The HTTP API of assay (`assay serve`).
//!
//! Routes live under `/api`: datasets, items (with bulk operations and
//! history), runs (trigger, poll, results, compare), cancel/delete of runs,
//! a live result stream (SSE), plugin upload and inspection, health and an
//! OpenAPI 3.1 document (`/api/openapi.json`). [`routes::ROUTES`] is the
//! single table both the router and the document are built from.
//!
//! The same table holds Mastra's dataset and experiment routes (an assay run
//! is a Mastra experiment), so Mastra's published client drives assay;
//! answers carry Mastra's field names next to assay's ([`views`]) and request
//! bodies accept Mastra's names as aliases ([`bodies`]). Bodies are strict:
//! an unknown field is a 400 naming it. `docs/mastra-compat.md` has the
//! mapping.
//!
//! * Triggering a run validates everything up front and answers at once
//!   (202, `status: "pending"`); the [`assay_runner::Scheduler`] executes it
//!   in the background and a client polls `GET .../runs/{runId}`.
//! * Errors are JSON `{message, code, field?}` with 400/404/409/413/415/
//!   422/429 ([`ApiError`]); axum's plain-text rejections never reach a
//!   client.
//! * Every `/api` route needs `Authorization: Bearer <API key>` and acts as
//!   the key's tenant with the key's role (`viewer` reads, `member` changes,
//!   `admin` also manages keys); `/health` is open. Another tenant's ids are
//!   404. See [`auth`] for the trusted-proxy and no-auth modes, and
//!   `docs/tenancy.md` for the whole security model.

#![recursion_limit = "256"]

pub mod auth;
pub mod bodies;
pub mod config;
pub mod conn;
pub mod cors;
pub mod error;
pub mod event_hub;
pub mod extract;
pub mod handlers;
pub mod host_check;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod state;
pub mod views;
pub mod web;

pub use auth::{AuthMode, Caller, ROLE_HEADER, TENANT_HEADER};
pub use config::{ApiOptions, DEFAULT_ADDR, DEFAULT_BODY_LIMIT, ServeConfig, ServerLimits};
pub use cors::CorsPolicy;
pub use error::{ApiError, ApiResult};
pub use host_check::HostPolicy;
pub use routes::{ROUTES, router};
pub use server::{
    RunningServer, ServeError, build_state, serve, shutdown_signal, start, start_with_state,
};
pub use state::AppState;
