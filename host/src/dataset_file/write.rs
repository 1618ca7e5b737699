//! Writing items back out, as JSONL or as CSV/TSV (context keys become
//! columns; contexts that cannot be columns are refused).

use std::fmt;
use std::io::Write;

use serde_json::{Map, Value};

use super::EXPECTED_FIELDS;
use super::delimited::format_cell;
use super::json::json_type;

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
    use super::super::testing::jsonl;
    use super::super::{FileFormat, read_items};
    use super::*;
    use serde_json::json;

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
