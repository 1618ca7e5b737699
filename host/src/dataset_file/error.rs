//! What reading a dataset file can end with, and the collector that gathers
//! the errors of several lines before reading stops.

/// Most line errors collected before reading stops.
const MAX_LINE_ERRORS: usize = 10;

/// One problem at one place of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line (JSONL, CSV) or item number (JSON array).
    pub line: u64,
    /// What is wrong there.
    pub message: String,
}

/// Why a dataset file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetFileError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The extension is not one we read.
    #[error(
        "cannot tell the format of {path}: use a .jsonl, .csv, .tsv or .json file (or pass --format)"
    )]
    UnknownFormat {
        /// The file.
        path: String,
    },
    /// One or more lines are invalid; nothing was imported.
    #[error("{}", fmt_line_errors(path, unit, errors, *truncated))]
    Lines {
        /// The file.
        path: String,
        /// `line` or `item`.
        unit: &'static str,
        /// The first errors, in file order.
        errors: Vec<LineError>,
        /// More errors were found than are listed.
        truncated: bool,
    },
    /// The file as a whole is unusable (no `input` column, not an array...).
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn fmt_line_errors(path: &str, unit: &str, errors: &[LineError], truncated: bool) -> String {
    let mut out = String::new();
    if let [only] = errors {
        out.push_str(&format!("{path}: {unit} {}: {}", only.line, only.message));
    } else {
        out.push_str(&format!(
            "{path}: {}{} invalid {unit}s:",
            if truncated { "at least " } else { "" },
            errors.len()
        ));
        for e in errors {
            out.push_str(&format!("\n  {unit} {}: {}", e.line, e.message));
        }
    }
    out.push_str("\nNothing was imported; fix the file and try again.");
    out
}

/// Collects line errors up to a cap.
pub(super) struct Errors {
    path: String,
    unit: &'static str,
    errors: Vec<LineError>,
    truncated: bool,
}

impl Errors {
    pub(super) fn new(path: &str, unit: &'static str) -> Self {
        Self {
            path: path.to_string(),
            unit,
            errors: Vec::new(),
            truncated: false,
        }
    }

    /// Records an error; false when the cap is reached (stop reading).
    pub(super) fn push(&mut self, line: u64, message: String) -> bool {
        if self.errors.len() >= MAX_LINE_ERRORS {
            self.truncated = true;
            return false;
        }
        self.errors.push(LineError { line, message });
        true
    }

    pub(super) fn finish<T>(self, value: T) -> Result<T, DatasetFileError> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(DatasetFileError::Lines {
                path: self.path,
                unit: self.unit,
                errors: self.errors,
                truncated: self.truncated,
            })
        }
    }
}
