//! CSV and TSV files (a header row with an `input` column), and the cell
//! encoding shared with CSV export: cells that look like JSON are JSON.

use std::io::Read;

use assay_store::NewItem;
use serde_json::{Map, Value};

use super::EXPECTED_FIELDS;
use super::error::{DatasetFileError, Errors};

/// Reads CSV or TSV, handing each valid row's item to `sink` as it is read
/// (memory holds one record); line errors are collected and returned at
/// the end.
pub(super) fn parse_csv(
    reader: impl Read,
    delimiter: u8,
    path: &str,
    sink: &mut dyn FnMut(NewItem),
) -> Result<(), DatasetFileError> {
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
        sink(NewItem {
            input: parse_cell(input),
            expected_output,
            context: (!context.is_empty()).then_some(Value::Object(context)),
        });
    }
    errors.finish(())
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

#[cfg(test)]
mod tests {
    use super::super::testing::csv;
    use super::*;
    use serde_json::json;

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
}
