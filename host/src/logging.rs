//! Logging to stderr, filtered by `ASSAY_LOG` (or `RUST_LOG`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The filter used when neither `ASSAY_LOG` nor `RUST_LOG` is set.
pub const DEFAULT_FILTER: &str = "warn";

/// Installs the global subscriber: human-readable lines on stderr (stdout
/// is kept for command output), level from `ASSAY_LOG`, else `RUST_LOG`,
/// else warnings only.
pub fn init() {
    let spec = std::env::var("ASSAY_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| DEFAULT_FILTER.to_string());
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("warning: ignoring invalid log filter `{spec}`: {e}");
        EnvFilter::new(DEFAULT_FILTER)
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true)
        .try_init();
}
