//! Dataset files: reading JSONL, CSV and JSON arrays into items (with errors
//! that name the line), the content hash that recognises a file already
//! imported, and writing items back out (JSONL or CSV).
//!
//! Accepted shapes:
//! * **JSONL** (`.jsonl`, `.ndjson`): one object per line with `input`, an
//!   optional expected output (`expectedOutput`, `expected_output`,
//!   `expected`, `groundTruth` or `ground_truth`) and optional `context` (or
//!   `metadata`). Other fields are folded into the context object. Blank
//!   lines are skipped.
//! * **CSV** (`.csv`, `.tsv`): a header with an `input` column and optionally
//!   an expected-output column (same names); every other column becomes a
//!   context field. Cells that look like JSON (objects, arrays, quoted
//!   strings, numbers, `true`, `false`, `null`) are parsed as JSON, anything
//!   else is a string. Empty cells are absent values.
//! * **JSON** (`.json`): an array of objects shaped like the JSONL lines.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use assay_store::NewItem;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Most line errors collected before reading stops.
const MAX_LINE_ERRORS: usize = 10;

/// Names accepted for the expected output of an item.
pub const EXPECTED_FIELDS: &[&str] = &[
    "expectedOutput",
    "expected_output",
    "expected",
    "groundTruth",
    "ground_truth",
];
/// Names accepted for an item's context.
pub const CONTEXT_FIELDS: &[&str] = &["context", "metadata"];

/// The format of a dataset file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// One JSON array of objects.
    Json,
}

impl FileFormat {
    /// The format a file name implies, if any.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "jsonl" | "ndjson" => Self::Jsonl,
            "csv" => Self::Csv,
            "tsv" => Self::Tsv,
            "json" => Self::Json,
            _ => return None,
        })
    }
}

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

/// A dataset file, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetFile {
    /// The items, in file order.
    pub items: Vec<NewItem>,
    /// Hex SHA-256 of the normalized items (see [`content_hash`]).
    pub sha256: String,
    /// The format it was read as.
    pub format: FileFormat,
}

/// Reads a dataset file, in `format` or the one its extension names.
pub fn read_file(path: &Path, format: Option<FileFormat>) -> Result<DatasetFile, DatasetFileError> {
    let shown = path.display().to_string();
    let format = format
        .or_else(|| FileFormat::from_path(path))
        .ok_or_else(|| DatasetFileError::UnknownFormat {
            path: shown.clone(),
        })?;
    let file = std::fs::File::open(path).map_err(|source| DatasetFileError::Io {
        path: shown.clone(),
        source,
    })?;
    let items = read_items(file, format, &shown)?;
    Ok(DatasetFile {
        sha256: content_hash(&items),
        items,
        format,
    })
}

/// Parses items from `reader`; `path` only names the source in errors.
pub fn read_items(
    reader: impl Read,
    format: FileFormat,
    path: &str,
) -> Result<Vec<NewItem>, DatasetFileError> {
    let items = match format {
        FileFormat::Jsonl => parse_jsonl(reader, path)?,
        FileFormat::Csv => parse_csv(reader, b',', path)?,
        FileFormat::Tsv => parse_csv(reader, b'\t', path)?,
        FileFormat::Json => parse_json_array(reader, path)?,
    };
    if items.is_empty() {
        return Err(DatasetFileError::File {
            path: path.to_string(),
            message: "the file has no items".into(),
        });
    }
    Ok(items)
}

/// Collects line errors up to a cap.
struct Errors {
    path: String,
    unit: &'static str,
    errors: Vec<LineError>,
    truncated: bool,
}

impl Errors {
    fn new(path: &str, unit: &'static str) -> Self {
        Self {
            path: path.to_string(),
            unit,
            errors: Vec::new(),
            truncated: false,
        }
    }

    /// Records an error; false when the cap is reached (stop reading).
    fn push(&mut self, line: u64, message: String) -> bool {
        if self.errors.len() >= MAX_LINE_ERRORS {
            self.truncated = true;
            return false;
        }
        self.errors.push(LineError { line, message });
        true
    }

    fn finish<T>(self, value: T) -> Result<T, DatasetFileError> {
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

fn parse_jsonl(reader: impl Read, path: &str) -> Result<Vec<NewItem>, DatasetFileError> {
    let mut items = Vec::new();
    let mut errors = Errors::new(path, "line");
    for (n, line) in BufReader::new(reader).lines().enumerate() {
        let line_no = n as u64 + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                if !errors.push(line_no, "not valid UTF-8".into()) {
                    break;
                }
                continue;
            }
            Err(source) => {
                return Err(DatasetFileError::Io {
                    path: path.to_string(),
                    source,
                });
            }
        };
        let text = line.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Value>(text)
            .map_err(|e| {
                format!(
                    "invalid JSON: {} (column {})",
                    json_error_text(&e),
                    e.column()
                )
            })
            .and_then(item_from_value);
        match parsed {
            Ok(item) => items.push(item),
            Err(message) => {
                if !errors.push(line_no, message) {
                    break;
                }
            }
        }
    }
    errors.finish(items)
}

fn parse_json_array(mut reader: impl Read, path: &str) -> Result<Vec<NewItem>, DatasetFileError> {
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|source| DatasetFileError::Io {
            path: path.to_string(),
            source,
        })?;
    let value: Value = serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| {
        DatasetFileError::Lines {
            path: path.to_string(),
            unit: "line",
            errors: vec![LineError {
                line: e.line() as u64,
                message: format!(
                    "invalid JSON: {} (column {})",
                    json_error_text(&e),
                    e.column()
                ),
            }],
            truncated: false,
        }
    })?;
    let Value::Array(rows) = value else {
        return Err(DatasetFileError::File {
            path: path.to_string(),
            message: format!(
                "expected a JSON array of items, found {}",
                json_type(&value)
            ),
        });
    };
    let mut items = Vec::with_capacity(rows.len());
    let mut errors = Errors::new(path, "item");
    for (n, row) in rows.into_iter().enumerate() {
        match item_from_value(row) {
            Ok(item) => items.push(item),
            Err(message) => {
                if !errors.push(n as u64 + 1, message) {
                    break;
                }
            }
        }
    }
    errors.finish(items)
}

/// serde_json's message without its " at line X column Y" tail.
fn json_error_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Turns one JSON object (a JSONL line, an array element) into an item.
pub fn item_from_value(value: Value) -> Result<NewItem, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "expected a JSON object with an `input` field, found {}",
            json_type(&value)
        ));
    };
    let mut input = None;
    let mut expected: Option<(String, Value)> = None;
    let mut context: Option<(String, Value)> = None;
    let mut extra = Map::new();
    for (key, value) in map {
        if key == "input" {
            input = Some(value);
        } else if EXPECTED_FIELDS.contains(&key.as_str()) {
            if let Some((first, _)) = &expected {
                return Err(format!(
                    "both `{first}` and `{key}` are set; keep one expected output"
                ));
            }
            expected = Some((key, value));
        } else if CONTEXT_FIELDS.contains(&key.as_str()) {
            if let Some((first, _)) = &context {
                return Err(format!("both `{first}` and `{key}` are set; keep one"));
            }
            context = Some((key, value));
        } else if let Some(meant) = looks_like_misspelling(&key) {
            return Err(format!("unknown field `{key}`; did you mean `{meant}`?"));
        } else {
            extra.insert(key, value);
        }
    }
    let input = match input {
        None => return Err("missing `input`".into()),
        Some(Value::Null) => return Err("`input` is null".into()),
        Some(v) => v,
    };
    let expected_output = expected.map(|(_, v)| v).filter(|v| !v.is_null());
    let context = match (
        context.map(|(_, v)| v).filter(|v| !v.is_null()),
        extra.is_empty(),
    ) {
        (c, true) => c,
        (None, false) => Some(Value::Object(extra)),
        (Some(Value::Object(mut c)), false) => {
            for (k, v) in extra {
                if c.contains_key(&k) {
                    return Err(format!(
                        "field `{k}` is both a top-level field and a key of `context`"
                    ));
                }
                c.insert(k, v);
            }
            Some(Value::Object(c))
        }
        (Some(_), false) => {
            let keys: Vec<_> = extra.keys().map(|k| format!("`{k}`")).collect();
            return Err(format!(
                "extra fields {} cannot be merged into a `context` that is not an object",
                keys.join(", ")
            ));
        }
    };
    Ok(NewItem {
        input,
        expected_output,
        context,
    })
}

/// A known field name that `key` is probably a typo of.
fn looks_like_misspelling(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    if lower == "input" || lower == "inputs" || lower == "imput" {
        return Some("input");
    }
    if lower.starts_with("expect") || lower.starts_with("ground") || lower == "expectedoutput" {
        return Some("expectedOutput");
    }
    if lower == "context" || lower == "metadata" || lower == "contexts" {
        return Some("context");
    }
    None
}

fn parse_csv(
    reader: impl Read,
    delimiter: u8,
    path: &str,
) -> Result<Vec<NewItem>, DatasetFileError> {
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(reader);
    let headers = csv.headers().map_err(|e| csv_error(path, e))?.clone();
    let names: Vec<String> = headers
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    let file_error = |message: String| DatasetFileError::File {
        path: path.to_string(),
        message,
    };
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(file_error(format!(
                "the header names column `{name}` twice"
            )));
        }
    }
    let input_col = names
        .iter()
        .position(|n| n == "input")
        .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case("input")))
        .ok_or_else(|| {
            file_error(format!(
                "the header has no `input` column (columns: {})",
                names.join(", ")
            ))
        })?;
    let expected_cols: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| EXPECTED_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(n)))
        .map(|(i, _)| i)
        .collect();
    if expected_cols.len() > 1 {
        return Err(file_error(format!(
            "the header has several expected-output columns ({}); keep one",
            expected_cols
                .iter()
                .map(|&i| names[i].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let expected_col = expected_cols.first().copied();

    let mut items = Vec::new();
    let mut errors = Errors::new(path, "line");
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("has {len} fields but the header has {expected_len}")
                    }
                    csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".into(),
                    csv::ErrorKind::Io(_) => return Err(csv_error(path, e)),
                    _ => e.to_string(),
                };
                if !errors.push(line, message) {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        let input = &record[input_col];
        if input.trim().is_empty() {
            if !errors.push(line, "the `input` cell is empty".into()) {
                break;
            }
            continue;
        }
        let expected_output = expected_col
            .map(|i| &record[i])
            .filter(|c| !c.is_empty())
            .map(parse_cell);
        let mut context = Map::new();
        for (i, cell) in record.iter().enumerate() {
            if i == input_col || Some(i) == expected_col || cell.is_empty() {
                continue;
            }
            context.insert(names[i].clone(), parse_cell(cell));
        }
        items.push(NewItem {
            input: parse_cell(input),
            expected_output,
            context: (!context.is_empty()).then_some(Value::Object(context)),
        });
    }
    errors.finish(items)
}

fn csv_error(path: &str, e: csv::Error) -> DatasetFileError {
    let message = e.to_string();
    match e.into_kind() {
        csv::ErrorKind::Io(source) => DatasetFileError::Io {
            path: path.to_string(),
            source,
        },
        _ => DatasetFileError::File {
            path: path.to_string(),
            message,
        },
    }
}

/// A CSV cell (or a `key=value` value) as JSON: cells that look like JSON
/// (objects, arrays, quoted strings, numbers, `true`, `false`, `null`) are
/// parsed; anything else, including JSON-looking text that does not parse,
/// is a string.
pub fn parse_cell(cell: &str) -> Value {
    let t = cell.trim();
    let looks_like_json = match t.as_bytes().first() {
        Some(b'{' | b'[' | b'"') => true,
        Some(b'-' | b'0'..=b'9') => true,
        _ => matches!(t, "true" | "false" | "null"),
    };
    if looks_like_json && let Ok(v) = serde_json::from_str::<Value>(t) {
        return v;
    }
    Value::String(cell.to_string())
}

/// A JSON value as a CSV cell, so that [`parse_cell`] reads back the same
/// value: strings that would not read back as themselves are written as
/// JSON strings.
pub fn format_cell(value: &Value) -> String {
    match value {
        Value::String(s) if !s.is_empty() && parse_cell(s) == *value => s.clone(),
        other => serde_json::to_string(other).expect("JSON serializes"),
    }
}

/// Writes `value` as JSON with object keys sorted, whatever the map type.
pub fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("string serializes"));
                out.push(':');
                canonical_json(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&serde_json::to_string(scalar).expect("JSON serializes")),
    }
}

/// The canonical JSON text of one item's content (`input`, `expectedOutput`,
/// `context`), used to hash files and to match items when a file changes.
pub fn canonical_item(input: &Value, expected: Option<&Value>, context: Option<&Value>) -> String {
    let mut out = String::from("{\"context\":");
    canonical_json(context.unwrap_or(&Value::Null), &mut out);
    out.push_str(",\"expectedOutput\":");
    canonical_json(expected.unwrap_or(&Value::Null), &mut out);
    out.push_str(",\"input\":");
    canonical_json(input, &mut out);
    out.push('}');
    out
}

/// Hex SHA-256 of the items' canonical JSON, one per line, in order. The
/// same items give the same hash whatever the file format, key order or
/// whitespace.
pub fn content_hash(items: &[NewItem]) -> String {
    let mut hasher = Sha256::new();
    for item in items {
        let line = canonical_item(
            &item.input,
            item.expected_output.as_ref(),
            item.context.as_ref(),
        );
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// Writes items as JSONL (`{"input", "expectedOutput"?, "context"?}`).
pub struct JsonlWriter<W: Write> {
    out: W,
}

impl<W: Write> JsonlWriter<W> {
    /// A writer to `out`.
    pub fn new(out: W) -> Self {
        Self { out }
    }

    /// Writes one item.
    pub fn write(
        &mut self,
        input: &Value,
        expected: Option<&Value>,
        context: Option<&Value>,
    ) -> std::io::Result<()> {
        let mut row = Map::new();
        row.insert("input".into(), input.clone());
        if let Some(e) = expected {
            row.insert("expectedOutput".into(), e.clone());
        }
        if let Some(c) = context {
            row.insert("context".into(), c.clone());
        }
        serde_json::to_writer(&mut self.out, &Value::Object(row))?;
        self.out.write_all(b"\n")
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Why items cannot be written as CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvShapeError(pub String);

impl fmt::Display for CsvShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CsvShapeError {}

/// Collects the context columns a CSV export needs (first pass over the
/// items), checking that every context is representable as columns.
#[derive(Debug, Default)]
pub struct CsvColumns {
    columns: Vec<String>,
}

impl CsvColumns {
    /// Looks at one item's context.
    pub fn observe(
        &mut self,
        position: usize,
        context: Option<&Value>,
    ) -> Result<(), CsvShapeError> {
        match context {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Object(map)) => {
                for key in map.keys() {
                    if key.eq_ignore_ascii_case("input")
                        || EXPECTED_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(key))
                    {
                        return Err(CsvShapeError(format!(
                            "item {position} has a context key `{key}` that would read back as a main column; export as JSONL instead"
                        )));
                    }
                    if !self.columns.contains(key) {
                        self.columns.push(key.clone());
                    }
                }
                Ok(())
            }
            Some(other) => Err(CsvShapeError(format!(
                "item {position} has a context that is {} (CSV needs an object: one column per key); export as JSONL instead",
                json_type(other)
            ))),
        }
    }

    /// The context columns, in first-seen order.
    pub fn into_columns(self) -> Vec<String> {
        self.columns
    }
}

/// Writes items as CSV: `input`, `expectedOutput`, then one column per
/// context key.
pub struct CsvWriter<W: Write> {
    out: csv::Writer<W>,
    columns: Vec<String>,
}

impl<W: Write> CsvWriter<W> {
    /// Writes the header.
    pub fn new(out: W, delimiter: u8, columns: Vec<String>) -> csv::Result<Self> {
        let mut out = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_writer(out);
        let mut header = vec!["input".to_string(), "expectedOutput".to_string()];
        header.extend(columns.iter().cloned());
        out.write_record(&header)?;
        Ok(Self { out, columns })
    }

    /// Writes one item (its context keys must have been observed).
    pub fn write(
        &mut self,
        input: &Value,
        expected: Option<&Value>,
        context: Option<&Value>,
    ) -> csv::Result<()> {
        let mut row = vec![
            format_cell(input),
            expected.map(format_cell).unwrap_or_default(),
        ];
        let ctx = context.and_then(Value::as_object);
        for col in &self.columns {
            row.push(
                ctx.and_then(|c| c.get(col))
                    .map(format_cell)
                    .unwrap_or_default(),
            );
        }
        self.out.write_record(&row)
    }

    /// Flushes.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jsonl(text: &str) -> Result<Vec<NewItem>, DatasetFileError> {
        read_items(text.as_bytes(), FileFormat::Jsonl, "t.jsonl")
    }

    fn csv(text: &str) -> Result<Vec<NewItem>, DatasetFileError> {
        read_items(text.as_bytes(), FileFormat::Csv, "t.csv")
    }

    #[test]
    fn jsonl_accepts_aliases_and_folds_extra_fields_into_context() {
        let items = jsonl(
            "{\"input\": \"a\", \"expectedOutput\": 1}\n\n{\"input\": {\"q\": 2}, \"ground_truth\": \"x\", \"id\": 7, \"context\": {\"k\": true}}\n",
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].expected_output, Some(json!(1)));
        assert_eq!(items[0].context, None);
        assert_eq!(items[1].input, json!({"q": 2}));
        assert_eq!(items[1].expected_output, Some(json!("x")));
        assert_eq!(items[1].context, Some(json!({"k": true, "id": 7})));
    }

    #[test]
    fn jsonl_errors_name_every_bad_line() {
        let err = jsonl("{\"input\": 1}\n{\"input\": \n[1]\n{\"expectedOutput\": 2}\n{\"input\": 1, \"expectedOuput\": 2}\n")
            .unwrap_err();
        let DatasetFileError::Lines { errors, .. } = &err else {
            panic!("{err}")
        };
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5]);
        let text = err.to_string();
        assert!(text.contains("line 2: invalid JSON"), "{text}");
        assert!(text.contains("line 3: expected a JSON object"), "{text}");
        assert!(text.contains("line 4: missing `input`"), "{text}");
        assert!(text.contains("did you mean `expectedOutput`"), "{text}");
    }

    #[test]
    fn csv_parses_json_looking_cells_and_extra_columns() {
        let items =
            csv("input,expectedOutput,topic\nParis?,Paris,geo\n\"{\"\"a\"\":1}\",42,\n").unwrap();
        assert_eq!(items[0].input, json!("Paris?"));
        assert_eq!(items[0].expected_output, Some(json!("Paris")));
        assert_eq!(items[0].context, Some(json!({"topic": "geo"})));
        assert_eq!(items[1].input, json!({"a": 1}));
        assert_eq!(items[1].expected_output, Some(json!(42)));
        assert_eq!(items[1].context, None);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let err = csv("input,expected\na,b\nc,d,e\n,f\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3: has 3 fields but the header has 2"),
            "{err}"
        );
        assert!(err.contains("line 4: the `input` cell is empty"), "{err}");
        let err = csv("question,answer\na,b\n").unwrap_err().to_string();
        assert!(
            err.contains("no `input` column (columns: question, answer)"),
            "{err}"
        );
    }

    #[test]
    fn cells_round_trip_through_format_and_parse() {
        for v in [
            json!("Paris"),
            json!("42"),
            json!(42),
            json!(""),
            json!("true"),
            json!({"a": [1, "b"]}),
            json!("[not json"),
            json!(" spaced "),
            json!(null),
        ] {
            assert_eq!(parse_cell(&format_cell(&v)), v, "{v}");
        }
    }

    #[test]
    fn hash_ignores_format_and_key_order() {
        let a = jsonl("{\"input\": {\"x\": 1, \"y\": 2}, \"expected\": \"b\", \"topic\": \"t\"}\n")
            .unwrap();
        let b = csv("topic,expectedOutput,input\nt,b,\"{\"\"y\"\": 2, \"\"x\"\": 1}\"\n").unwrap();
        assert_eq!(a, b);
        assert_eq!(content_hash(&a), content_hash(&b));
        let c = jsonl("{\"input\": {\"x\": 1, \"y\": 2}, \"expected\": \"c\", \"topic\": \"t\"}\n")
            .unwrap();
        assert_ne!(content_hash(&a), content_hash(&c));
    }

    #[test]
    fn csv_export_reads_back_the_same_items() {
        let items = jsonl(
            "{\"input\": \"a\", \"expectedOutput\": \"1\", \"context\": {\"k\": 1}}\n{\"input\": [1,2]}\n{\"input\": \"c\", \"expectedOutput\": {\"z\": null}, \"context\": {\"j\": \"x\"}}\n",
        )
        .unwrap();
        let mut cols = CsvColumns::default();
        for (i, item) in items.iter().enumerate() {
            cols.observe(i, item.context.as_ref()).unwrap();
        }
        let mut buf = Vec::new();
        let mut w = CsvWriter::new(&mut buf, b',', cols.into_columns()).unwrap();
        for item in &items {
            w.write(
                &item.input,
                item.expected_output.as_ref(),
                item.context.as_ref(),
            )
            .unwrap();
        }
        w.finish().unwrap();
        let back = read_items(buf.as_slice(), FileFormat::Csv, "x.csv").unwrap();
        assert_eq!(back, items);
    }

    #[test]
    fn csv_export_refuses_contexts_it_cannot_represent() {
        let mut cols = CsvColumns::default();
        assert!(cols.observe(0, Some(&json!([1]))).is_err());
        assert!(cols.observe(1, Some(&json!({"input": 1}))).is_err());
    }
}
