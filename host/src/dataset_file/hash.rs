//! The content hash that recognises a file already imported: the same items
//! give the same hash whatever the format, key order or whitespace.

use assay_store::NewItem;
use serde_json::Value;
use sha2::{Digest, Sha256};

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
    let mut hasher = ContentHasher::default();
    for item in items {
        hasher.add(item);
    }
    hasher.finish()
}

/// [`content_hash`] computed one item at a time, for files read as a
/// stream.
#[derive(Default)]
pub struct ContentHasher {
    hasher: Sha256,
    count: usize,
}

impl ContentHasher {
    /// Adds the next item.
    pub fn add(&mut self, item: &NewItem) {
        let line = canonical_item(
            &item.input,
            item.expected_output.as_ref(),
            item.context.as_ref(),
        );
        self.hasher.update(line.as_bytes());
        self.hasher.update(b"\n");
        self.count += 1;
    }

    /// Items added so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The hex hash of the items added.
    pub fn finish(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{csv, jsonl};
    use super::*;

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
}
