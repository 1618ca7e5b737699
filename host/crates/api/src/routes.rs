//! The route table: the one list from which both the router and the
//! OpenAPI document are built, so a route cannot exist undocumented.

use std::sync::Arc;

use assay_store::Role;
use axum::BoxError;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{self, Access};
use crate::config::OVERLOAD_RETRY_AFTER;
use crate::error::ApiError;
use crate::handlers::{
    cache, datasets, events, experiments, items, plugins, runs, scores, secrets, system, tenancy,
};
use crate::host_check;
use crate::state::AppState;

/// An HTTP method of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// GET
    Get,
    /// POST
    Post,
    /// PATCH
    Patch,
    /// PUT
    Put,
    /// DELETE
    Delete,
}

impl Verb {
    /// Lowercase, as OpenAPI keys operations.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Patch => "patch",
            Verb::Put => "put",
            Verb::Delete => "delete",
        }
    }

    /// The HTTP method.
    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Patch => Method::PATCH,
            Verb::Put => Method::PUT,
            Verb::Delete => Method::DELETE,
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Put => MethodFilter::PUT,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// Query parameters a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryParams {
    /// None.
    None,
    /// `page`, `perPage`.
    Paging,
    /// `page`, `perPage`, `version`, `search`.
    Items,
    /// `after`.
    Events,
    /// `passThreshold`.
    PassThreshold,
    /// `page`, `perPage`, `failed`, `scorer`, `below`.
    Results,
}

/// A route's request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// None.
    None,
    /// JSON of the named schema (`#/components/schemas/<name>`).
    Json(&'static str),
    /// A raw WebAssembly component.
    Wasm,
}

/// A route's success answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// JSON of the named schema.
    Json(u16, &'static str),
    /// `{<key>: [<schema>], pagination}` (200).
    List(&'static str, &'static str),
    /// A `text/event-stream` (200).
    EventStream,
}

/// One route: method, path (axum and OpenAPI share the `{param}` syntax),
/// documentation, and the handler.
pub struct RouteSpec {
    /// Method.
    pub verb: Verb,
    /// Path, with `{name}` parameters.
    pub path: &'static str,
    /// OpenAPI `operationId`.
    pub operation_id: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// OpenAPI tag.
    pub tag: &'static str,
    /// Query parameters.
    pub query: QueryParams,
    /// Request body.
    pub body: RequestBody,
    /// Success answer.
    pub answer: Answer,
    /// Error statuses it can answer (besides 500; 401 and 403 are added
    /// for authenticated routes).
    pub errors: &'static [u16],
    /// Who may call it (by default: anyone with a key for `GET`, a member
    /// for every change).
    pub access: Access,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

impl RouteSpec {
    /// Whether the route needs a caller (an API key, or a trusted header).
    pub fn authenticated(&self) -> bool {
        self.access != Access::Open
    }

    /// Whether a query string on this route is refused (400
    /// `invalid_query`): an /api route that takes no parameters, so that a
    /// filter or scope it does not know is not silently ignored.
    pub fn refuses_query(&self) -> bool {
        self.query == QueryParams::None && self.path.starts_with("/api/")
    }

    /// Whether the route answers outside the overload limits (requests
    /// in flight, request deadline): the open `/health`, which must answer
    /// while the server sheds load.
    pub fn is_exempt_from_limits(&self) -> bool {
        self.access == Access::Open
    }

    /// The names of the path parameters, in order.
    pub fn path_params(&self) -> Vec<&'static str> {
        self.path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect()
    }
}

/// The access a route gets unless the table says otherwise: reading needs
/// a key of any role, changing anything a member.
pub const fn default_access(verb: Verb) -> Access {
    match verb {
        Verb::Get => Access::Role(Role::Viewer),
        _ => Access::Role(Role::Member),
    }
}

macro_rules! route {
    ($verb:ident $path:literal, $op:literal, $tag:literal, $summary:literal,
     query: $query:expr, body: $body:expr, answer: $answer:expr, errors: $errors:expr,
     $handler:path) => {
        route!($verb $path, $op, $tag, $summary, query: $query, body: $body, answer: $answer,
            errors: $errors, access: default_access(Verb::$verb), $handler)
    };
    ($verb:ident $path:literal, $op:literal, $tag:literal, $summary:literal,
     query: $query:expr, body: $body:expr, answer: $answer:expr, errors: $errors:expr,
     access: $access:expr, $handler:path) => {
        RouteSpec {
            verb: Verb::$verb,
            path: $path,
            operation_id: $op,
            summary: $summary,
            tag: $tag,
            query: $query,
            body: $body,
            answer: $answer,
            errors: $errors,
            access: $access,
            handler: |m| on(m, $handler),
        }
    };
}

use Answer::{EventStream, Json as Reply, List};
use QueryParams::{Events, Items, Paging, PassThreshold, Results};
use RequestBody::{Json, Wasm};

const NONE_Q: QueryParams = QueryParams::None;
const NO_BODY: RequestBody = RequestBody::None;

/// Every route of the server.
pub static ROUTES: &[RouteSpec] = &[
    // ---- system ----
    route!(Get "/health", "health", "system", "Liveness and database check (no authentication)",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Health"), errors: &[503],
        access: Access::Open, system::health),
    route!(Get "/api/health", "apiHealth", "system", "Liveness and database check (under /api)",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Health"), errors: &[503], system::health),
    route!(Get "/api/openapi.json", "openapi", "system", "This OpenAPI 3.1 document",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "OpenApiDocument"), errors: &[], system::openapi),
    // ---- datasets ----
    route!(Get "/api/datasets", "listDatasets", "datasets", "List datasets, newest first",
        query: Paging, body: NO_BODY, answer: List("datasets", "Dataset"), errors: &[400], datasets::list),
    route!(Post "/api/datasets", "createDataset", "datasets", "Create a dataset",
        query: NONE_Q, body: Json("NewDataset"), answer: Reply(201, "Dataset"),
        errors: &[400, 409, 413, 415, 422], datasets::create),
    route!(Get "/api/datasets/{datasetId}", "getDataset", "datasets", "Get a dataset",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Dataset"), errors: &[404], datasets::get),
    route!(Patch "/api/datasets/{datasetId}", "updateDataset", "datasets",
        "Update a dataset (a schema change re-validates every item)",
        query: NONE_Q, body: Json("DatasetPatch"), answer: Reply(200, "Dataset"),
        errors: &[400, 404, 409, 413, 415], datasets::update),
    route!(Delete "/api/datasets/{datasetId}", "deleteDataset", "datasets",
        "Delete a dataset with its items, history and runs",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Success"), errors: &[404, 409], datasets::delete),
    route!(Get "/api/datasets/{datasetId}/versions", "listDatasetVersions", "datasets",
        "The dataset's version history, newest first",
        query: Paging, body: NO_BODY, answer: List("versions", "DatasetVersion"),
        errors: &[400, 404], datasets::versions),
    // ---- items ----
    route!(Get "/api/datasets/{datasetId}/items", "listItems", "items",
        "List items in dataset order (live, or at `version`; filtered by `search`)",
        query: Items, body: NO_BODY, answer: List("items", "DatasetItem"),
        errors: &[400, 404], items::list),
    route!(Post "/api/datasets/{datasetId}/items", "addItem", "items", "Add one item",
        query: NONE_Q, body: Json("NewItem"), answer: Reply(201, "DatasetItem"),
        errors: &[400, 404, 413, 415, 422], items::add),
    route!(Post "/api/datasets/{datasetId}/items/bulk", "bulkAddItems", "items",
        "Add many items at once (all or nothing, one version)",
        query: NONE_Q, body: Json("BulkAddItems"), answer: Reply(201, "BulkAddResult"),
        errors: &[400, 404, 413, 415, 422], items::bulk_add),
    route!(Delete "/api/datasets/{datasetId}/items/bulk", "bulkDeleteItems", "items",
        "Delete many items at once (one version)",
        query: NONE_Q, body: Json("BulkDeleteItems"), answer: Reply(200, "BulkDeleteResult"),
        errors: &[400, 404, 413, 415], items::bulk_delete),
    route!(Get "/api/datasets/{datasetId}/items/{itemId}", "getItem", "items", "Get an item",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "DatasetItem"), errors: &[404], items::get),
    route!(Patch "/api/datasets/{datasetId}/items/{itemId}", "updateItem", "items", "Change an item",
        query: NONE_Q, body: Json("ItemPatch"), answer: Reply(200, "DatasetItem"),
        errors: &[400, 404, 413, 415], items::update),
    route!(Delete "/api/datasets/{datasetId}/items/{itemId}", "deleteItem", "items", "Delete an item",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Success"), errors: &[404], items::delete),
    route!(Get "/api/datasets/{datasetId}/items/{itemId}/versions", "listItemVersions", "items",
        "An item's history, newest first (deleted items too)",
        query: Paging, body: NO_BODY, answer: List("versions", "ItemVersion"),
        errors: &[400, 404], items::versions),
    route!(Get "/api/datasets/{datasetId}/items/{itemId}/versions/{datasetVersion}", "getItemVersion",
        "items", "The item as it was at a dataset version (404 when it did not exist then)",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "ItemHistoryEntry"), errors: &[400, 404],
        items::version),
    route!(Get "/api/datasets/{datasetId}/items/{itemId}/history", "getItemHistory", "items",
        "An item's whole history, newest first, tombstones included (Mastra's shape)",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "ItemHistory"), errors: &[404],
        items::item_history),
    route!(Post "/api/datasets/{datasetId}/items/batch", "batchInsertItems", "items",
        "Mastra's name of `POST .../items/bulk`",
        query: NONE_Q, body: Json("BulkAddItems"), answer: Reply(201, "BulkAddResult"),
        errors: &[400, 404, 413, 415, 429], items::bulk_add),
    route!(Delete "/api/datasets/{datasetId}/items/batch", "batchDeleteItems", "items",
        "Mastra's name of `DELETE .../items/bulk`",
        query: NONE_Q, body: Json("BulkDeleteItems"), answer: Reply(200, "BulkDeleteResult"),
        errors: &[400, 404, 413, 415], items::bulk_delete),
    // ---- runs ----
    route!(Get "/api/datasets/{datasetId}/runs", "listRuns", "runs", "List the dataset's runs, newest first",
        query: Paging, body: NO_BODY, answer: List("runs", "Run"), errors: &[400, 404], runs::list),
    route!(Post "/api/datasets/{datasetId}/runs", "triggerRun", "runs",
        "Trigger a run: validated up front, stored `pending`, executed in the background",
        query: NONE_Q, body: Json("TriggerRun"), answer: Reply(202, "TriggeredRun"),
        errors: &[400, 404, 413, 415, 422, 429], runs::trigger),
    route!(Get "/api/datasets/{datasetId}/runs/{runId}", "getRun", "runs",
        "The run itself (not wrapped): status, counts, timestamps",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Run"), errors: &[404], runs::get),
    route!(Delete "/api/datasets/{datasetId}/runs/{runId}", "deleteRun", "runs",
        "Delete a run and its results (409 while it runs)",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Success"), errors: &[404, 409], runs::delete),
    route!(Post "/api/datasets/{datasetId}/runs/{runId}/cancel", "cancelRun", "runs",
        "Cancel a run (pending: at once; running: in-flight items are cancelled, then it ends `cancelled`)",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Run"), errors: &[404, 409], runs::cancel),
    route!(Post "/api/datasets/{datasetId}/runs/{runId}/rescore", "rescoreRun", "runs",
        "Re-score a finished run: a new run linked to it (`parentRunId`) grading its stored outputs \
         with other scorers, executed in the background; the target is not called",
        query: NONE_Q, body: Json("RescoreRun"), answer: Reply(202, "TriggeredRun"),
        errors: &[400, 404, 409, 413, 415, 429], runs::rescore),
    route!(Get "/api/datasets/{datasetId}/runs/{runId}/results", "listRunResults", "runs",
        "The run's results in dataset order, with their scores (filtered by `failed`, `scorer` and `below`)",
        query: Results, body: NO_BODY, answer: List("results", "RunResult"),
        errors: &[400, 404], runs::results),
    route!(Get "/api/datasets/{datasetId}/runs/{runId}/summary", "getRunSummary", "runs",
        "The run's statistics: per-scorer means and pass rates, latency percentiles, failures grouped by error",
        query: PassThreshold, body: NO_BODY, answer: Reply(200, "RunSummary"),
        errors: &[400, 404], runs::summary),
    route!(Get "/api/datasets/{datasetId}/runs/{runId}/events", "streamRunEvents", "runs",
        "Server-Sent Events: `run`, then one `result` per stored result (id = sequence number), then `end`; \
         resumable with `Last-Event-ID`",
        query: Events, body: NO_BODY, answer: EventStream, errors: &[400, 404, 429], events::stream),
    route!(Post "/api/datasets/{datasetId}/compare", "compareRuns", "runs",
        "Compare two runs (or Mastra experiments) of the dataset: per-scorer stats, deltas, regressions",
        query: NONE_Q, body: Json("CompareRuns"), answer: Reply(200, "ComparisonResult"),
        errors: &[400, 404, 413, 415], runs::compare),
    // ---- experiments (Mastra's names for runs) ----
    route!(Get "/api/experiments", "listAllExperiments", "experiments",
        "Every run of the tenant as a Mastra experiment, newest first",
        query: Paging, body: NO_BODY, answer: List("experiments", "Experiment"), errors: &[400],
        experiments::list_all),
    route!(Delete "/api/experiments/{experimentId}", "deleteAnyExperiment", "experiments",
        "Delete a run and its results, whatever its dataset (409 while it runs)",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Success"), errors: &[404, 409],
        experiments::delete_any),
    route!(Get "/api/datasets/{datasetId}/experiments", "listExperiments", "experiments",
        "The dataset's runs as Mastra experiments, newest first",
        query: Paging, body: NO_BODY, answer: List("experiments", "Experiment"), errors: &[400, 404],
        experiments::list),
    route!(Post "/api/datasets/{datasetId}/experiments", "triggerExperiment", "experiments",
        "Trigger a run (Mastra's name): same body and answer as `POST .../runs`",
        query: NONE_Q, body: Json("TriggerRun"), answer: Reply(202, "TriggeredRun"),
        errors: &[400, 404, 413, 415, 422, 429], experiments::trigger),
    route!(Get "/api/datasets/{datasetId}/experiments/{experimentId}", "getExperiment", "experiments",
        "A run as a Mastra experiment",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Experiment"), errors: &[404], experiments::get),
    route!(Delete "/api/datasets/{datasetId}/experiments/{experimentId}", "deleteExperiment",
        "experiments", "Delete a run and its results (409 while it runs)",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Success"), errors: &[404, 409],
        experiments::delete),
    route!(Get "/api/datasets/{datasetId}/experiments/{experimentId}/results", "listExperimentResults",
        "experiments", "The run's results in dataset order, as Mastra experiment results",
        query: Paging, body: NO_BODY, answer: List("results", "ExperimentResult"),
        errors: &[400, 404], experiments::results),
    // ---- scores ----
    route!(Get "/api/scores/run/{runId}", "listScoresByRunId", "scores",
        "The run's scores as Mastra score rows (dataset order; failed scorers have no row)",
        query: Paging, body: NO_BODY, answer: List("scores", "Score"), errors: &[400, 404],
        scores::by_run),
    // ---- plugins ----
    route!(Get "/api/plugins", "listPlugins", "plugins", "List registered plugins",
        query: Paging, body: NO_BODY, answer: List("plugins", "Plugin"), errors: &[400], plugins::list),
    route!(Post "/api/plugins", "uploadPlugin", "plugins",
        "Upload a plugin: the raw .wasm component; validated in the sandbox, registered under its own id",
        query: NONE_Q, body: Wasm, answer: Reply(201, "Plugin"), errors: &[400, 409, 413, 415, 422], plugins::upload),
    route!(Get "/api/plugins/{pluginId}", "getPlugin", "plugins",
        "A plugin's record and what its component declares",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "PluginDetail"), errors: &[404], plugins::get),
    route!(Delete "/api/plugins/{pluginId}", "deletePlugin", "plugins", "Unregister a plugin",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Success"), errors: &[404, 409], plugins::delete),
    route!(Get "/api/plugins/{pluginId}/grant", "getPluginGrant", "plugins",
        "The plugin's network grant in this tenant (404 when none)",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "PluginGrant"), errors: &[404], secrets::get_grant),
    route!(Put "/api/plugins/{pluginId}/grant", "setPluginGrant", "plugins",
        "Set or replace the hosts the plugin may reach in this tenant's runs",
        query: NONE_Q, body: Json("NetworkGrant"), answer: Reply(200, "PluginGrant"),
        errors: &[400, 404, 413, 415], access: Access::Role(Role::Admin), secrets::put_grant),
    route!(Delete "/api/plugins/{pluginId}/grant", "deletePluginGrant", "plugins",
        "Revoke the plugin's network grant in this tenant",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Success"), errors: &[404],
        access: Access::Role(Role::Admin), secrets::delete_grant),
    // ---- secrets (write-only values) ----
    route!(Get "/api/secrets", "listSecrets", "secrets", "The tenant's secret names and times (never values)",
        query: NONE_Q, body: NO_BODY, answer: List("secrets", "SecretInfo"), errors: &[],
        access: Access::Role(Role::Member), secrets::list),
    route!(Put "/api/secrets/{secretName}", "setSecret", "secrets",
        "Set or replace a secret (sealed before it is stored; never returned)",
        query: NONE_Q, body: Json("SecretValue"), answer: Reply(200, "SecretInfo"),
        errors: &[400, 404, 413, 415, 503], access: Access::Role(Role::Admin), secrets::put),
    route!(Delete "/api/secrets/{secretName}", "deleteSecret", "secrets", "Delete a secret",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "Success"), errors: &[404],
        access: Access::Role(Role::Admin), secrets::delete),
    // ---- the caller's tenant and its keys ----
    route!(Get "/api/tenant", "getTenant", "tenant",
        "The caller's tenant: its limits, what it uses, and the caller's role",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "TenantStatus"), errors: &[], tenancy::status),
    route!(Get "/api/cache", "getOutputCache", "tenant",
        "The tenant's output cache: stored target outputs, their bytes and the budget (`cache-bytes`)",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "CacheStats"), errors: &[], cache::stats),
    route!(Delete "/api/cache", "clearOutputCache", "tenant",
        "Remove every stored output of the tenant's output cache (runs and results are kept)",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "CacheCleared"), errors: &[], cache::clear),
    route!(Get "/api/keys", "listApiKeys", "tenant", "The tenant's API keys (never their tokens)",
        query: NONE_Q, body: NO_BODY, answer: List("keys", "ApiKey"), errors: &[],
        access: Access::Role(Role::Admin), tenancy::list_keys),
    route!(Post "/api/keys", "createApiKey", "tenant",
        "Create an API key for the tenant; the token is in this answer only",
        query: NONE_Q, body: Json("NewApiKey"), answer: Reply(201, "CreatedApiKey"),
        errors: &[400, 413, 415], access: Access::Role(Role::Admin), tenancy::create_key),
    route!(Delete "/api/keys/{keyId}", "revokeApiKey", "tenant",
        "Revoke one of the tenant's API keys (it stops authenticating at once)",
        query: NONE_Q, body: NO_BODY, answer: Reply(200, "ApiKey"), errors: &[404],
        access: Access::Role(Role::Admin), tenancy::revoke_key),
];

/// The router: every route of [`ROUTES`], the playground's static pages
/// ([`crate::web`]), JSON answers for unknown paths (404) and wrong methods
/// (405), the body limit, CORS, the `Host` allow-list, request tracing and
/// the overload limits (`/health` is outside them, so
/// that it answers while the server sheds load). Add API routes to
/// [`ROUTES`], never here.
pub fn router(state: AppState) -> Router {
    let mut open = Router::new();
    let mut limited = Router::new();
    for spec in ROUTES {
        let access = spec.access;
        let mut route = (spec.handler)(spec.verb.filter());
        if spec.refuses_query() {
            // Inside the authorization layer: a caller without a key gets
            // 401, not a hint about the route's parameters.
            let template = spec.path;
            route = route.route_layer(middleware::from_fn(move |req, next| {
                refuse_query(template, req, next)
            }));
        }
        let route = route.route_layer(middleware::from_fn_with_state(
            state.clone(),
            move |s, req, next| auth::authorize(s, access, req, next),
        ));
        if spec.is_exempt_from_limits() {
            open = open.route(spec.path, route);
        } else {
            limited = limited.route(spec.path, route);
        }
    }
    let options = state.options().clone();
    // Requests in flight at once (one semaphore for every route: axum
    // applies a layer to each route separately), shed with 503
    // `overloaded` and `Retry-After` when none is free rather than queued;
    // and a deadline on each request's answer (503 `timeout`).
    let permits = Arc::new(tokio::sync::Semaphore::new(
        options.limits.max_requests.max(1),
    ));
    let timeout = options.limits.request_timeout;
    let overload_limits = tower::ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |e: BoxError| async move {
            overload_error(e, timeout)
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::with_semaphore(permits))
        .timeout(timeout);
    let limited = limited
        .merge(crate::web::router())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(overload_limits);
    let mut router = open
        .merge(limited)
        .layer(DefaultBodyLimit::max(options.body_limit_bytes));
    if let Some(cors) = options.cors.layer() {
        router = router.layer(cors);
    }
    router
        .layer(middleware::from_fn_with_state(
            Arc::new(options.hosts),
            host_check::check,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The answer to a request the overload limits stopped.
fn overload_error(e: BoxError, timeout: std::time::Duration) -> ApiError {
    if e.is::<tower::load_shed::error::Overloaded>() {
        crate::metrics::request_shed();
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is handling as many requests as it allows; retry shortly",
        );
        e.retry_after = Some(OVERLOAD_RETRY_AFTER);
        e
    } else if e.is::<tower::timeout::error::Elapsed>() {
        crate::metrics::request_timed_out();
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request was not answered within the server's limit of {} s",
                timeout.as_secs_f64()
            ),
        )
    } else {
        ApiError::internal(e)
    }
}

/// Answers 400 `invalid_query` to a query string on a route that takes none
/// (see [`RouteSpec::refuses_query`]), naming the parameters it got.
async fn refuse_query(template: &'static str, req: Request, next: Next) -> Response {
    let query = req.uri().query().unwrap_or("");
    if query.is_empty() {
        return next.run(req).await;
    }
    let names: Vec<&str> = query
        .split('&')
        .filter_map(|kv| kv.split('=').next())
        .filter(|k| !k.is_empty())
        .collect();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        format!(
            "{} {template} takes no query parameters; got `{}`",
            req.method(),
            names.join("`, `")
        ),
    )
    .into_response()
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        format!(
            "no route for {method} {} (see /api/openapi.json)",
            uri.path()
        ),
    )
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    let allowed: Vec<String> = ROUTES
        .iter()
        .filter(|r| path_matches(r.path, uri.path()))
        .map(|r| r.verb.as_str().to_ascii_uppercase())
        .collect();
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; allowed: {}",
            uri.path(),
            allowed.join(", ")
        ),
    )
}

/// Whether `path` (a concrete request path) matches the `template`.
fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn no_route_is_listed_twice() {
        let mut seen = HashSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.verb, r.path)),
                "{:?} {} twice",
                r.verb,
                r.path
            );
        }
        let ops: HashSet<_> = ROUTES.iter().map(|r| r.operation_id).collect();
        assert_eq!(ops.len(), ROUTES.len(), "operation ids must be unique");
    }

    #[test]
    fn paths_match_their_templates() {
        assert!(path_matches(
            "/api/datasets/{datasetId}",
            "/api/datasets/abc"
        ));
        assert!(!path_matches(
            "/api/datasets/{datasetId}",
            "/api/datasets/abc/items"
        ));
        assert!(!path_matches("/api/datasets/{datasetId}", "/api/datasets/"));
    }
}
