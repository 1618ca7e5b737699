//! [`PluginError`]: why a plugin call failed.

use std::fmt;

/// Why a plugin call failed. The kind tells the host what to do next.
///
/// | kind | meaning | host retries? |
/// | --- | --- | --- |
/// | [`InvalidInput`](Self::InvalidInput) | the item or config cannot be handled | never |
/// | [`Transient`](Self::Transient) | a passing failure (rate limit, upstream down) | yes, with backoff, up to the run's `maxRetries` |
/// | [`Failed`](Self::Failed) | anything else | never |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The item or config cannot be handled; retrying will not help.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A passing failure; the host may retry the call.
    #[error("transient error: {0}")]
    Transient(String),
    /// Any other failure; not retried.
    #[error("failed: {0}")]
    Failed(String),
}

/// The kind of a [`PluginError`], without its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// See [`PluginError::InvalidInput`].
    InvalidInput,
    /// See [`PluginError::Transient`].
    Transient,
    /// See [`PluginError::Failed`].
    Failed,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidInput => "invalid-input",
            Self::Transient => "transient",
            Self::Failed => "failed",
        })
    }
}

impl PluginError {
    /// The item or config cannot be handled (never retried).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// A passing failure (retried by the host when the run allows retries).
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient(message.into())
    }

    /// Any other failure (never retried).
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::Transient(_) => ErrorKind::Transient,
            Self::Failed(_) => ErrorKind::Failed,
        }
    }

    /// The message, without the kind prefix that `Display` adds.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidInput(m) | Self::Transient(m) | Self::Failed(m) => m,
        }
    }
}

/// JSON that does not have the shape the plugin expects is invalid input.
impl From<serde_json::Error> for PluginError {
    fn from(err: serde_json::Error) -> Self {
        Self::InvalidInput(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_messages() {
        let e = PluginError::transient("rate limited");
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert_eq!(e.message(), "rate limited");
        assert_eq!(e.to_string(), "transient error: rate limited");
        assert_eq!(ErrorKind::InvalidInput.to_string(), "invalid-input");
    }

    #[test]
    fn serde_errors_are_invalid_input() {
        let err: PluginError = serde_json::from_str::<u8>("\"x\"").unwrap_err().into();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("invalid type"), "{err}");
    }
}
