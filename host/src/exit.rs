//! Exit codes of the `assay` binary (also listed in `assay --help`).

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: everything went as asked.
    Success,
    /// 1: an error (bad input, unknown id, unusable plugin), or a run that
    /// failed or was cancelled from elsewhere.
    Error,
    /// 2: a usage error (clap reports its own with this code too).
    Usage,
    /// 3: a quality gate was missed (`--fail-under`,
    /// `runs compare --fail-on-regression`).
    GateFailed,
    /// 4: some items failed and `--fail-on-errors` was given.
    ItemsFailed,
    /// 130: interrupted by Ctrl-C.
    Interrupted,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Error => 1,
            Exit::Usage => 2,
            Exit::GateFailed => 3,
            Exit::ItemsFailed => 4,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// An error in how the command was used, found after parsing (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error that ended a command.
pub fn code_for_error(e: &anyhow::Error) -> Exit {
    if e.downcast_ref::<UsageError>().is_some() {
        Exit::Usage
    } else {
        Exit::Error
    }
}
