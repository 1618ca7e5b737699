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
//!
//! The module is split by job: `json` and `delimited` read the formats,
//! `hash` computes the content hash, `write` writes items back out, and
//! `error` holds the errors reading can end with.

mod delimited;
mod error;
mod hash;
mod json;
mod write;

use std::io::Read;
use std::path::{Path, PathBuf};

use assay_store::NewItem;

pub use delimited::{format_cell, parse_cell};
pub use error::{DatasetFileError, LineError};
pub use hash::{ContentHasher, canonical_item, canonical_json, content_hash};
pub use json::item_from_value;
pub use write::{CsvColumns, CsvShapeError, CsvWriter, JsonlWriter};

use delimited::parse_csv;
use json::{parse_json_array, parse_jsonl};

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

/// What a dataset file holds, learned by reading it through once without
/// keeping its items (see [`scan_file`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// The file's path.
    pub path: PathBuf,
    /// The format it is read as.
    pub format: FileFormat,
    /// Items in the file.
    pub count: usize,
    /// Hex SHA-256 of the normalized items (see [`content_hash`]).
    pub sha256: String,
}

/// Reads a dataset file, in `format` or the one its extension names.
pub fn read_file(path: &Path, format: Option<FileFormat>) -> Result<DatasetFile, DatasetFileError> {
    let format = resolve_format(path, format)?;
    let file = open(path)?;
    let items = read_items(file, format, &path.display().to_string())?;
    Ok(DatasetFile {
        sha256: content_hash(&items),
        items,
        format,
    })
}

/// Reads a dataset file through once, checking every line, and returns its
/// item count and content hash without keeping the items: memory does not
/// grow with the file (JSON arrays excepted, which are parsed whole).
pub fn scan_file(path: &Path, format: Option<FileFormat>) -> Result<FileSummary, DatasetFileError> {
    stream_file(path, format, usize::MAX, &mut |_| true)
}

/// Reads a dataset file and hands its items to `batch` in batches of up to
/// `batch_size`, in file order. `batch` returns false to stop reading (its
/// consumer went away); the summary then covers what was read. Lines are
/// checked as they come: an error is returned after the whole file was
/// read (up to ten line errors), and batches may have been handed over
/// before it, so a consumer must commit only once this returns `Ok`.
pub fn stream_file(
    path: &Path,
    format: Option<FileFormat>,
    batch_size: usize,
    batch: &mut dyn FnMut(Vec<NewItem>) -> bool,
) -> Result<FileSummary, DatasetFileError> {
    let format = resolve_format(path, format)?;
    let shown = path.display().to_string();
    let mut hasher = ContentHasher::default();
    let mut pending: Vec<NewItem> = Vec::new();
    let mut open_consumer = true;
    let mut sink = |item: NewItem| {
        hasher.add(&item);
        if batch_size == usize::MAX {
            return;
        }
        pending.push(item);
        if pending.len() >= batch_size && open_consumer {
            open_consumer = batch(std::mem::take(&mut pending));
        }
    };
    for_each_item(open(path)?, format, &shown, &mut sink)?;
    if !pending.is_empty() && open_consumer {
        batch(pending);
    }
    if hasher.count() == 0 {
        return Err(no_items(&shown));
    }
    Ok(FileSummary {
        path: path.to_path_buf(),
        format,
        count: hasher.count(),
        sha256: hasher.finish(),
    })
}

fn resolve_format(path: &Path, format: Option<FileFormat>) -> Result<FileFormat, DatasetFileError> {
    format
        .or_else(|| FileFormat::from_path(path))
        .ok_or_else(|| DatasetFileError::UnknownFormat {
            path: path.display().to_string(),
        })
}

fn open(path: &Path) -> Result<std::fs::File, DatasetFileError> {
    std::fs::File::open(path).map_err(|source| DatasetFileError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn no_items(path: &str) -> DatasetFileError {
    DatasetFileError::File {
        path: path.to_string(),
        message: "the file has no items".into(),
    }
}

/// Parses items from `reader`; `path` only names the source in errors.
pub fn read_items(
    reader: impl Read,
    format: FileFormat,
    path: &str,
) -> Result<Vec<NewItem>, DatasetFileError> {
    let mut items = Vec::new();
    for_each_item(reader, format, path, &mut |item| items.push(item))?;
    if items.is_empty() {
        return Err(no_items(path));
    }
    Ok(items)
}

/// Parses items from `reader` one at a time into `sink`.
fn for_each_item(
    reader: impl Read,
    format: FileFormat,
    path: &str,
    sink: &mut dyn FnMut(NewItem),
) -> Result<(), DatasetFileError> {
    match format {
        FileFormat::Jsonl => parse_jsonl(reader, path, sink),
        FileFormat::Csv => parse_csv(reader, b',', path, sink),
        FileFormat::Tsv => parse_csv(reader, b'\t', path, sink),
        FileFormat::Json => parse_json_array(reader, path, sink),
    }
}

#[cfg(test)]
mod testing {
    use super::*;

    pub fn jsonl(text: &str) -> Result<Vec<NewItem>, DatasetFileError> {
        read_items(text.as_bytes(), FileFormat::Jsonl, "t.jsonl")
    }

    pub fn csv(text: &str) -> Result<Vec<NewItem>, DatasetFileError> {
        read_items(text.as_bytes(), FileFormat::Csv, "t.csv")
    }
}
