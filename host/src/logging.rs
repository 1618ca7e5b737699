//! Logging to stderr, filtered by `ASSAY_LOG` (or `RUST_LOG`), as text or
//! as JSON lines (`--log-format json`); and, when `--otlp-endpoint` (or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) is given, the spans of runs and plugin
//! calls exported over OTLP/HTTP (protobuf) to that collector.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The filter used when neither `ASSAY_LOG` nor `RUST_LOG` is set.
pub const DEFAULT_FILTER: &str = "warn";

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`,
    /// and `span` with the enclosing span's fields (a run's lines carry its
    /// `run_id` and `tenant`).
    Json,
}

/// Installs the global subscriber on stderr (stdout is kept for command
/// output), level from `ASSAY_LOG`, else `RUST_LOG`, else warnings only;
/// with `otlp_endpoint`, also the trace exporter. Keep the returned
/// [`Telemetry`] and [`Telemetry::shutdown`] it before exiting, so the last
/// spans are sent.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Telemetry {
    let spec = std::env::var("ASSAY_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| DEFAULT_FILTER.to_string());
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("warning: ignoring invalid log filter `{spec}`: {e}");
        EnvFilter::new(DEFAULT_FILTER)
    });
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(true);
    let fmt = match format {
        LogFormat::Text => fmt.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let provider = otlp_endpoint.and_then(|url| match otlp_provider(url) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("warning: not exporting traces to {url}: {e}");
            None
        }
    });
    // The exporter has a filter of its own: the log filter (warnings by
    // default) would drop the info-level spans of runs and calls.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("assay"))
            .with_filter(
                Targets::new()
                    .with_target("assay", Level::INFO)
                    .with_target("assay_api", Level::INFO)
                    .with_target("assay_runner", Level::INFO),
            )
    });
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
    Telemetry { provider }
}

/// The trace exporter: batches of spans posted to `<base>/v1/traces`.
fn otlp_provider(base: &str) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')))
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("assay")
                .build(),
        )
        .build())
}

/// The trace exporter, if any, to flush at exit.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans not sent yet and stops the exporter.
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            eprintln!("warning: traces not all exported: {e}");
        }
    }
}
