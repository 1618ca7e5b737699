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
use std::path::Path;

use assay_store::NewItem;

pub use delimited::{format_cell, parse_cell};
pub use error::{DatasetFileError, LineError};
pub use hash::{canonical_item, canonical_json, content_hash};
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
