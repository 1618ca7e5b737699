//! Logging to stderr, filtered by `ASSAY_LOG` (or `RUST_LOG`), as text or
//! as JSON lines (`--log-format json`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

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
/// output), level from `ASSAY_LOG`, else `RUST_LOG`, else warnings only.
pub fn init(format: LogFormat) {
    let spec = std::env::var("ASSAY_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| DEFAULT_FILTER.to_string());
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("warning: ignoring invalid log filter `{spec}`: {e}");
        EnvFilter::new(DEFAULT_FILTER)
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
