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
//! * The tenant comes from the `x-assay-tenant` header (default
//!   `default`). It is trusted as is: until API keys exist, put the server
//!   behind a proxy that sets or strips it. An unknown tenant is created with
//!   default limits on first use and starts with an empty world.

#![recursion_limit = "256"]

pub mod bodies;
pub mod config;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod state;
pub mod views;

pub use config::{ApiOptions, DEFAULT_ADDR, DEFAULT_BODY_LIMIT, ServeConfig};
pub use error::{ApiError, ApiResult};
pub use extract::TENANT_HEADER;
pub use routes::{ROUTES, router};
pub use server::{
    RunningServer, ServeError, build_state, serve, shutdown_signal, start, start_with_state,
};
pub use state::AppState;
