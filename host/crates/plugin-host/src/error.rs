//! Typed errors: [`LoadError`] when a component is loaded, [`CallError`]
//! (wrapped in [`CallFailure`] with the call's logs) when a call fails.

use std::path::PathBuf;
use std::time::Duration;

use crate::logs::CapturedLogs;
use crate::net_report::NetworkReport;

/// Why a component could not be loaded as an assay plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all (empty, text, garbage).
    #[error("not a WebAssembly component ({detail})")]
    NotWasm {
        /// What was found instead.
        detail: String,
    },
    /// The component is larger than the host accepts.
    #[error("component is {}, over the limit of {}", fmt_bytes(*size), fmt_bytes(*limit))]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// `HostConfig::max_component_bytes`.
        limit: usize,
    },
    /// The bytes are a core WebAssembly module, not a component.
    #[error("not a WebAssembly component (it is a core module; build with --target wasm32-wasip2)")]
    NotAComponent,
    /// The component exports neither plugin interface.
    #[error("component does not export {missing}; it exports: [{}]", found.join(", "))]
    WrongWorld {
        /// What the host looked for.
        missing: String,
        /// The component's export names.
        found: Vec<String>,
    },
    /// The component was built against a contract version this host does
    /// not speak.
    #[error("{}", incompatible_message(plugin, supported, *mismatch))]
    IncompatibleContract {
        /// The plugin's contract version (from its export name).
        plugin: String,
        /// The versions this host supports, e.g. `0.1.x`.
        supported: String,
        /// Whether the plugin is older or newer than that range.
        mismatch: ContractMismatch,
    },
    /// The component did not finish loading within the host's time limit
    /// (which includes waiting for a compile slot).
    #[error("compiling the component took longer than the limit of {} (the host may be busy compiling other uploads: try again later)", fmt_duration(*limit))]
    CompileTimeout {
        /// `HostConfig::compile_timeout`.
        limit: Duration,
    },
    /// wasmtime rejected the component (invalid binary, unsupported feature).
    #[error("cannot compile component: {0}")]
    Compile(String),
    /// The component cannot be instantiated in the sandbox (for example it
    /// imports an interface the host does not provide), or its `info` call
    /// failed.
    #[error("cannot instantiate component: {0}")]
    Instantiate(String),
    /// The plugin's `info` is not acceptable (e.g. an invalid id).
    #[error("invalid plugin info: {0}")]
    InvalidInfo(String),
    /// The wasmtime engine could not be set up.
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
}

/// A load's result is shared by every caller that asked for the same bytes
/// at once, so the error is cloned; an I/O error keeps its kind and text.
impl Clone for LoadError {
    fn clone(&self) -> Self {
        match self {
            LoadError::Io { path, source } => LoadError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            LoadError::NotWasm { detail } => LoadError::NotWasm {
                detail: detail.clone(),
            },
            LoadError::TooLarge { size, limit } => LoadError::TooLarge {
                size: *size,
                limit: *limit,
            },
            LoadError::NotAComponent => LoadError::NotAComponent,
            LoadError::WrongWorld { missing, found } => LoadError::WrongWorld {
                missing: missing.clone(),
                found: found.clone(),
            },
            LoadError::IncompatibleContract {
                plugin,
                supported,
                mismatch,
            } => LoadError::IncompatibleContract {
                plugin: plugin.clone(),
                supported: supported.clone(),
                mismatch: *mismatch,
            },
            LoadError::CompileTimeout { limit } => LoadError::CompileTimeout { limit: *limit },
            LoadError::Compile(m) => LoadError::Compile(m.clone()),
            LoadError::Instantiate(m) => LoadError::Instantiate(m.clone()),
            LoadError::InvalidInfo(m) => LoadError::InvalidInfo(m.clone()),
            LoadError::Engine(m) => LoadError::Engine(m.clone()),
        }
    }
}

/// How a plugin's contract version relates to the host's supported range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractMismatch {
    /// Older than every supported version: rebuild the plugin.
    TooOld,
    /// Newer than every supported version: upgrade the host.
    TooNew,
    /// Not a version, or inside the range but not supported.
    Unknown,
}

/// `plugin was built against assay:plugin contract 0.0.1, older than this
/// host supports (0.1.x): rebuild it with a current assay-plugin-sdk`.
fn incompatible_message(plugin: &str, supported: &str, mismatch: ContractMismatch) -> String {
    let head = format!("plugin was built against assay:plugin contract {plugin}");
    match mismatch {
        ContractMismatch::TooOld => format!(
            "{head}, older than this host supports ({supported}): rebuild it with a current assay-plugin-sdk"
        ),
        ContractMismatch::TooNew => format!(
            "{head}, newer than this host supports ({supported}): upgrade assay, or build the plugin with an SDK for {supported}"
        ),
        ContractMismatch::Unknown => {
            format!("{head}, which this host does not support (it supports {supported})")
        }
    }
}

/// Why one plugin call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The call ran past its deadline.
    #[error("plugin exceeded its {} time limit", fmt_duration(*after))]
    Timeout {
        /// The deadline that was exceeded.
        after: Duration,
    },
    /// The guest tried to grow its memory past the limit.
    #[error("plugin exceeded its memory limit of {}", fmt_bytes(*limit_bytes))]
    MemoryLimit {
        /// The limit.
        limit_bytes: usize,
    },
    /// The guest trapped (stack overflow, `unreachable`, out-of-bounds...).
    #[error("{message}")]
    Trap {
        /// A full sentence, e.g. "plugin overflowed its stack".
        message: String,
    },
    /// The guest panicked; `message` is the panic message from its stderr.
    #[error("plugin panicked: {message}")]
    Panic {
        /// The panic message.
        message: String,
    },
    /// The returned JSON is larger than the output limit.
    #[error("plugin output too large: {} (limit {})", fmt_bytes(*size), fmt_bytes(*limit))]
    OutputTooLarge {
        /// Size returned.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The plugin returned text that is not JSON where JSON was expected.
    #[error("plugin returned invalid JSON as {what}: {error}")]
    InvalidJson {
        /// Which field (`output`, `metadata`).
        what: &'static str,
        /// The parser's message.
        error: String,
    },
    /// A scorer returned a value outside `[0, 1]` (or NaN).
    #[error("plugin returned score {value}, outside [0, 1]")]
    ScoreOutOfRange {
        /// The value returned.
        value: f64,
    },
    /// The plugin says the item or config is invalid (not retried).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The plugin reports a passing failure (may be retried).
    #[error("transient failure: {0}")]
    Transient(String),
    /// The plugin reports a failure.
    #[error("{0}")]
    Failed(String),
    /// The host itself failed to run the call.
    #[error("host error: {0}")]
    Host(String),
}

impl CallError {
    /// Whether retrying the call may succeed (only plugin-reported
    /// transient failures).
    pub fn is_transient(&self) -> bool {
        matches!(self, CallError::Transient(_))
    }

    /// A stable machine-readable code for this error.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Timeout { .. } => "timeout",
            CallError::MemoryLimit { .. } => "memory-limit",
            CallError::Trap { .. } => "trap",
            CallError::Panic { .. } => "panic",
            CallError::OutputTooLarge { .. } => "output-too-large",
            CallError::InvalidJson { .. } => "invalid-json",
            CallError::ScoreOutOfRange { .. } => "score-out-of-range",
            CallError::InvalidInput(_) => "invalid-input",
            CallError::Transient(_) => "transient",
            CallError::Failed(_) => "failed",
            CallError::Host(_) => "host",
        }
    }
}

/// A failed call: the error and whatever the guest wrote before failing.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct CallFailure {
    /// What went wrong.
    pub error: CallError,
    /// The guest's stdout/stderr up to the failure.
    pub logs: CapturedLogs,
    /// The outbound requests the call made before failing.
    pub network: NetworkReport,
}

impl CallFailure {
    /// A failure with its logs and no network activity.
    pub fn new(error: CallError, logs: CapturedLogs) -> Self {
        Self {
            error,
            logs,
            network: NetworkReport::default(),
        }
    }
}

impl CallError {
    /// Appends ` (note)` to the message of errors that carry one, so a
    /// stored failure says what the network refused. Errors with a fixed
    /// message (timeout, memory, output size) are left as they are.
    pub(crate) fn with_note(self, note: &str) -> CallError {
        let add = |m: String| format!("{m} ({note})");
        match self {
            CallError::Trap { message } => CallError::Trap {
                message: add(message),
            },
            CallError::Panic { message } => CallError::Panic {
                message: add(message),
            },
            CallError::InvalidInput(m) => CallError::InvalidInput(add(m)),
            CallError::Transient(m) => CallError::Transient(add(m)),
            CallError::Failed(m) => CallError::Failed(add(m)),
            CallError::Host(m) => CallError::Host(add(m)),
            other => other,
        }
    }

    /// Replaces secret values in the message by `[secret NAME]`.
    pub(crate) fn redacted(self, secrets: &crate::secrets::Secrets) -> CallError {
        if secrets.is_empty() {
            return self;
        }
        let r = |m: String| secrets.redact(&m).into_owned();
        match self {
            CallError::Trap { message } => CallError::Trap {
                message: r(message),
            },
            CallError::Panic { message } => CallError::Panic {
                message: r(message),
            },
            CallError::InvalidJson { what, error } => CallError::InvalidJson {
                what,
                error: r(error),
            },
            CallError::InvalidInput(m) => CallError::InvalidInput(r(m)),
            CallError::Transient(m) => CallError::Transient(r(m)),
            CallError::Failed(m) => CallError::Failed(r(m)),
            CallError::Host(m) => CallError::Host(r(m)),
            other => other,
        }
    }
}

/// `5s`, `1.5s`, `250ms`.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else if ms >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if ms > 0 {
        format!("{ms}ms")
    } else {
        format!("{}µs", d.as_micros())
    }
}

/// `64 MiB`, `512 KiB`, `100 bytes`.
pub(crate) fn fmt_bytes(n: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    const GIB: usize = 1024 * 1024 * 1024;
    if n >= GIB && n.is_multiple_of(GIB) {
        format!("{} GiB", n / GIB)
    } else if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else if n >= KIB {
        format!("{:.1} KiB", n as f64 / KIB as f64)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_well() {
        assert_eq!(
            CallError::Timeout {
                after: Duration::from_secs(5)
            }
            .to_string(),
            "plugin exceeded its 5s time limit"
        );
        assert_eq!(
            CallError::Timeout {
                after: Duration::from_millis(250)
            }
            .to_string(),
            "plugin exceeded its 250ms time limit"
        );
        assert_eq!(
            CallError::MemoryLimit {
                limit_bytes: 64 << 20
            }
            .to_string(),
            "plugin exceeded its memory limit of 64 MiB"
        );
        assert_eq!(
            LoadError::IncompatibleContract {
                plugin: "0.0.1".into(),
                supported: "0.1.x".into(),
                mismatch: ContractMismatch::TooOld,
            }
            .to_string(),
            "plugin was built against assay:plugin contract 0.0.1, older than this host supports (0.1.x): rebuild it with a current assay-plugin-sdk"
        );
        assert_eq!(
            LoadError::IncompatibleContract {
                plugin: "0.2.0".into(),
                supported: "0.1.x".into(),
                mismatch: ContractMismatch::TooNew,
            }
            .to_string(),
            "plugin was built against assay:plugin contract 0.2.0, newer than this host supports (0.1.x): upgrade assay, or build the plugin with an SDK for 0.1.x"
        );
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
        assert_eq!(fmt_bytes(100), "100 bytes");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(CallError::Transient("rate limited".into()).is_transient());
        assert!(!CallError::InvalidInput("bad".into()).is_transient());
        assert!(
            !CallError::Timeout {
                after: Duration::from_secs(1)
            }
            .is_transient()
        );
        assert_eq!(CallError::Failed("x".into()).kind(), "failed");
    }
}
