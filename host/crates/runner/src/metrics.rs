//! What the runner records for `/metrics`, through the `metrics` facade: a
//! no-op until a program installs a recorder (`assay serve` does, the CLI
//! does not), so recording costs a few atomic operations at most and needs
//! no handle passed down. Names and labels are documented in
//! `docs/operations.md`.

use std::future::Future;
use std::time::{Duration, Instant};

use ::metrics::{counter, histogram};

/// Which contract function a plugin call was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// A target's `run`.
    Target,
    /// A scorer's `score`.
    Scorer,
}

impl CallKind {
    fn as_str(self) -> &'static str {
        match self {
            CallKind::Target => "target",
            CallKind::Scorer => "scorer",
        }
    }
}

/// Awaits one plugin call in a `plugin_call` span and records its latency
/// (`assay_plugin_call_duration_seconds{tenant, plugin, kind, outcome}`).
pub async fn timed_call<T, E>(
    tenant: &str,
    plugin: &str,
    kind: CallKind,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = Instant::now();
    // A span per call (exported as a trace span when the program exports
    // traces; a child of the run's span).
    let span = tracing::info_span!(
        "plugin_call",
        tenant,
        plugin,
        kind = kind.as_str(),
        outcome = tracing::field::Empty,
    );
    let result = tracing::Instrument::instrument(call, span.clone()).await;
    span.record("outcome", if result.is_ok() { "ok" } else { "error" });
    histogram!(
        "assay_plugin_call_duration_seconds",
        "tenant" => tenant.to_string(),
        "plugin" => plugin.to_string(),
        "kind" => kind.as_str(),
        "outcome" => if result.is_ok() { "ok" } else { "error" },
    )
    .record(started.elapsed().as_secs_f64());
    result
}

/// One item finished (`assay_items_total{tenant, outcome}`, outcome
/// `completed` or `failed`).
pub fn item_finished(tenant: &str, failed: bool) {
    counter!(
        "assay_items_total",
        "tenant" => tenant.to_string(),
        "outcome" => if failed { "failed" } else { "completed" },
    )
    .increment(1);
}

/// A run reached a final status (`assay_runs_finished_total{tenant, status}`).
pub fn run_finished(tenant: &str, status: &str) {
    counter!(
        "assay_runs_finished_total",
        "tenant" => tenant.to_string(),
        "status" => status.to_string(),
    )
    .increment(1);
}

/// One batch of results written (`assay_result_write_batch_size`,
/// `assay_result_write_duration_seconds`).
pub fn result_batch_written(size: usize, took: Duration, ok: bool) {
    histogram!("assay_result_write_batch_size").record(size as f64);
    histogram!(
        "assay_result_write_duration_seconds",
        "outcome" => if ok { "ok" } else { "error" },
    )
    .record(took.as_secs_f64());
}

/// Items of a run with the output cache looked up
/// (`assay_output_cache_lookups_total{tenant, result}`, result `hit` or
/// `miss`).
pub fn output_cache_looked_up(tenant: &str, hits: usize, misses: usize) {
    for (result, n) in [("hit", hits), ("miss", misses)] {
        counter!(
            "assay_output_cache_lookups_total",
            "tenant" => tenant.to_string(),
            "result" => result,
        )
        .increment(n as u64);
    }
}

/// One plugin load that compiled (`assay_plugin_compiles_total`,
/// `assay_plugin_compile_duration_seconds`); loads served from the
/// compiled-code cache are counted apart
/// (`assay_plugin_cache_loads_total`).
pub fn plugin_loaded(from_cache: bool, took: Duration) {
    if from_cache {
        counter!("assay_plugin_cache_loads_total").increment(1);
    } else {
        counter!("assay_plugin_compiles_total").increment(1);
        histogram!("assay_plugin_compile_duration_seconds").record(took.as_secs_f64());
    }
}
