//! JSONL files and JSON arrays: one object per item, with the field aliases
//! and the folding of extra fields into the context.

use std::io::{BufRead, BufReader, Read};

use assay_store::NewItem;
use serde_json::{Map, Value};

use super::error::{DatasetFileError, Errors, LineError};
use super::{CONTEXT_FIELDS, EXPECTED_FIELDS};

/// Reads JSONL, handing each valid item to `sink` as it is read (memory
/// holds one line); line errors are collected and returned at the end.
pub(super) fn parse_jsonl(
    reader: impl Read,
    path: &str,
    sink: &mut dyn FnMut(NewItem),
) -> Result<(), DatasetFileError> {
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
            Ok(item) => sink(item),
            Err(message) => {
                if !errors.push(line_no, message) {
                    break;
                }
            }
        }
    }
    errors.finish(())
}

/// Reads a JSON array of items. The array is parsed whole (JSONL is the
/// format for files too large for memory); items go to `sink` in order.
pub(super) fn parse_json_array(
    mut reader: impl Read,
    path: &str,
    sink: &mut dyn FnMut(NewItem),
) -> Result<(), DatasetFileError> {
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
    let mut errors = Errors::new(path, "item");
    for (n, row) in rows.into_iter().enumerate() {
        match item_from_value(row) {
            Ok(item) => sink(item),
            Err(message) => {
                if !errors.push(n as u64 + 1, message) {
                    break;
                }
            }
        }
    }
    errors.finish(())
}

/// serde_json's message without its " at line X column Y" tail.
fn json_error_text(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

pub(super) fn json_type(v: &Value) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::super::testing::jsonl;
    use super::*;
    use serde_json::json;

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
}
