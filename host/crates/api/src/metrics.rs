//! Process metrics in the Prometheus text format (`GET /metrics`).
//!
//! Metrics are recorded through the `metrics` facade where they happen
//! (plugin calls and compiles in assay-plugin-host, items, runs and result
//! writes in assay-runner, connections and requests here); the facade is a
//! no-op until a recorder is installed, so those crates need no wiring and
//! no dependency on this one. [`handle`] installs
//! `metrics-exporter-prometheus`'s recorder once per process and renders
//! it. Why that pair rather than the `prometheus` crate: the facade keeps
//! the exporter out of the libraries (a registry would have to be passed
//! down to every place that records), and the exporter renders the text
//! format without an HTTP listener of its own (`default-features = false`),
//! so `/metrics` sits behind the server's own limits and access rule.
//!
//! The metric names and labels are listed in `docs/operations.md`.

use std::sync::OnceLock;

use ::metrics::{counter, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for latencies, in seconds (1 ms to 5 min).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Histogram buckets for batch sizes (results per database write).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The process's Prometheus recorder, installed on first use. `None` when
/// another recorder was installed first (by an embedding program).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_batch_size".into()), BATCH_BUCKETS)
                });
            match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => Some(handle),
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed; /metrics is empty");
                    None
                }
            }
        })
        .as_ref()
}

/// The current metrics as Prometheus text.
pub fn render() -> String {
    match handle() {
        Some(h) => {
            h.run_upkeep();
            h.render()
        }
        None => String::new(),
    }
}

pub(crate) fn connection_opened() {
    gauge!("assay_http_connections_open").increment(1.0);
    counter!("assay_http_connections_total").increment(1);
}

pub(crate) fn connection_closed() {
    gauge!("assay_http_connections_open").decrement(1.0);
}

pub(crate) fn connection_evicted() {
    counter!("assay_http_connections_evicted_total").increment(1);
}

pub(crate) fn connection_shed() {
    counter!("assay_http_connections_shed_total").increment(1);
}

pub(crate) fn request_shed() {
    counter!("assay_http_requests_shed_total").increment(1);
}

pub(crate) fn request_timed_out() {
    counter!("assay_http_requests_timed_out_total").increment(1);
}

/// The router of the metrics address (`--metrics-addr`): `GET /metrics`
/// only. It is served on its own listener, never on the API's address, so
/// that a tenant's API key cannot read other tenants' labels (see
/// `docs/operations.md`).
pub fn router(state: crate::AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(state)
}

/// `GET /metrics`: samples the gauges read from the scheduler and the
/// database, then renders everything as Prometheus text (version 0.0.4).
async fn scrape(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
) -> impl axum::response::IntoResponse {
    handle();
    sample_gauges(&s).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
}

/// Gauges that are states rather than events: runs executing in this
/// process, and each tenant's runs by state in the database (`pending` is
/// the queue depth).
async fn sample_gauges(s: &crate::AppState) {
    gauge!("assay_scheduler_active_runs").set(s.active_runs() as f64);
    let store = s.store();
    let tenants = match store.list_tenants().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot list tenants");
            return;
        }
    };
    let mut queued = 0i64;
    for tenant in tenants {
        match store.tenant_usage(&tenant.id).await {
            Ok(usage) => {
                queued += usage.queued_runs;
                gauge!("assay_runs", "tenant" => tenant.id.clone(), "state" => "pending")
                    .set(usage.queued_runs as f64);
                gauge!("assay_runs", "tenant" => tenant.id.clone(), "state" => "running")
                    .set(usage.active_runs as f64);
            }
            Err(e) => tracing::warn!(tenant = tenant.id, error = %e, "metrics: no usage"),
        }
    }
    gauge!("assay_run_queue_depth").set(queued as f64);
}

pub(crate) fn write_timed_out() {
    counter!("assay_http_write_timeouts_total").increment(1);
}
