//! JSON Schema validation of items against their dataset's schemas, and
//! the caps on what one call may add.
//!
//! Validation is CPU work proportional to the items: it runs on a blocking
//! thread ([`check_off_runtime`], [`collect_off_runtime`]), never on the
//! async runtime, and callers run it before they take the database's write
//! lock, so one tenant's large add or schema change neither stalls the
//! runtime nor every other writer (lease renewals included). See
//! `docs/datasets.md`.

use std::sync::Arc;

use jsonschema::Validator;
use serde_json::Value;

use crate::error::StoreError;
use crate::models::{DatasetItem, NewItem};
use crate::tenancy::item_bytes;

/// How many failing items a schema change reports at most.
pub const MAX_REPORTED_FAILURES: usize = 10;

/// Items one `add_items` call (one bulk request) may add: the whole list is
/// held in memory and validated at once. Larger imports stream (`assay
/// dataset import`), a batch at a time.
pub const MAX_ITEMS_PER_REQUEST: usize = 100_000;

/// Bytes one item may take (its input, expected output and context as
/// JSON, counted like the tenant's stored-bytes limit).
pub const MAX_ITEM_BYTES: i64 = 4 << 20;

/// `Validation` on `items` when a single call adds more than
/// [`MAX_ITEMS_PER_REQUEST`] items.
pub fn check_request_size(count: usize) -> Result<(), StoreError> {
    if count > MAX_ITEMS_PER_REQUEST {
        return Err(StoreError::validation(
            "items",
            format!(
                "{count} items in one request; the cap is maxItemsPerRequest = {MAX_ITEMS_PER_REQUEST} (split the add, or import a file); nothing was added"
            ),
        ));
    }
    Ok(())
}

/// `Validation` naming the first item (by its place in the whole list,
/// from `first`) larger than [`MAX_ITEM_BYTES`].
pub fn check_item_sizes(items: &[NewItem], first: usize) -> Result<(), StoreError> {
    for (i, item) in items.iter().enumerate() {
        check_item_size(
            &format!("items[{}]", first + i),
            item_bytes(
                &item.input,
                item.expected_output.as_ref(),
                item.context.as_ref(),
            ),
        )?;
    }
    Ok(())
}

/// `Validation` on `field` when an item of `bytes` bytes is over
/// [`MAX_ITEM_BYTES`].
pub fn check_item_size(field: &str, bytes: i64) -> Result<(), StoreError> {
    if bytes > MAX_ITEM_BYTES {
        return Err(StoreError::validation(
            field,
            format!(
                "the item is {bytes} bytes; the cap is maxItemBytes = {MAX_ITEM_BYTES}; nothing was added"
            ),
        ));
    }
    Ok(())
}

/// Checks `items` (item `first` onwards of a longer list) on a blocking
/// thread, their sizes ([`MAX_ITEM_BYTES`]) and then their schemas, and
/// hands them back.
pub async fn check_off_runtime(
    validator: Arc<ItemValidator>,
    items: Vec<NewItem>,
    first: usize,
) -> Result<Vec<NewItem>, StoreError> {
    tokio::task::spawn_blocking(move || {
        check_item_sizes(&items, first)?;
        validator.check_new_items_from(&items, first)?;
        Ok(items)
    })
    .await
    .map_err(|e| StoreError::Corrupt(format!("validating items stopped: {e}")))?
}

/// Checks one page of stored items under new schemas on a blocking thread,
/// adding its failures to `collector`.
pub async fn collect_off_runtime(
    validator: Arc<ItemValidator>,
    mut collector: FailureCollector,
    page: Vec<DatasetItem>,
) -> Result<FailureCollector, StoreError> {
    tokio::task::spawn_blocking(move || {
        for item in &page {
            collector.check(&validator, item);
        }
        collector
    })
    .await
    .map_err(|e| StoreError::Corrupt(format!("re-validating items stopped: {e}")))
}

/// The compiled schemas of one dataset.
pub struct ItemValidator {
    input: Option<Validator>,
    output: Option<Validator>,
}

impl ItemValidator {
    /// Compiles the schemas; an invalid schema is a validation error on
    /// `inputSchema` / `outputSchema`.
    pub fn new(input: Option<&Value>, output: Option<&Value>) -> Result<Self, StoreError> {
        Ok(Self {
            input: compile("inputSchema", input)?,
            output: compile("outputSchema", output)?,
        })
    }

    /// True when the dataset defines no schema (nothing to check).
    pub fn is_noop(&self) -> bool {
        self.input.is_none() && self.output.is_none()
    }

    /// Checks one item. `prefix` is prepended to the field path (`""` for a
    /// single item, `items[3].` inside a bulk add).
    pub fn check(
        &self,
        prefix: &str,
        input: &Value,
        expected_output: Option<&Value>,
    ) -> Result<(), StoreError> {
        if let Some(v) = &self.input {
            check_one(v, &format!("{prefix}input"), input)?;
        }
        if let (Some(v), Some(out)) = (&self.output, expected_output) {
            check_one(v, &format!("{prefix}expectedOutput"), out)?;
        }
        Ok(())
    }

    /// Checks a batch of new items; the first bad one fails the batch.
    pub fn check_new_items(&self, items: &[NewItem]) -> Result<(), StoreError> {
        self.check_new_items_from(items, 0)
    }

    /// [`Self::check_new_items`] for a batch that starts at item `first` of
    /// a longer list (errors name the item's place in the whole list).
    pub fn check_new_items_from(&self, items: &[NewItem], first: usize) -> Result<(), StoreError> {
        if self.is_noop() {
            return Ok(());
        }
        for (i, item) in items.iter().enumerate() {
            let i = first + i;
            self.check(
                &format!("items[{i}]."),
                &item.input,
                item.expected_output.as_ref(),
            )?;
        }
        Ok(())
    }
}

/// Collects the failures of existing items under new schemas (for a schema
/// change), up to [`MAX_REPORTED_FAILURES`].
#[derive(Default)]
pub struct FailureCollector {
    failures: Vec<String>,
    total: u64,
}

impl FailureCollector {
    /// Checks one stored item.
    pub fn check(&mut self, validator: &ItemValidator, item: &DatasetItem) {
        if let Err(e) = validator.check("", &item.input, item.expected_output.as_ref()) {
            self.total += 1;
            if self.failures.len() < MAX_REPORTED_FAILURES {
                self.failures.push(format!("item {}: {e}", item.id));
            }
        }
    }

    /// `Err` naming the failing items when any failed.
    pub fn finish(self, field: &str) -> Result<(), StoreError> {
        if self.total == 0 {
            return Ok(());
        }
        Err(StoreError::validation(
            field,
            format!(
                "{} existing item(s) do not match the new schema: {}",
                self.total,
                self.failures.join("; ")
            ),
        ))
    }
}

fn compile(field: &str, schema: Option<&Value>) -> Result<Option<Validator>, StoreError> {
    schema
        .map(|s| {
            jsonschema::validator_for(s)
                .map_err(|e| StoreError::validation(field, format!("not a valid JSON Schema: {e}")))
        })
        .transpose()
}

fn check_one(validator: &Validator, root: &str, value: &Value) -> Result<(), StoreError> {
    let Some(err) = validator.iter_errors(value).next() else {
        return Ok(());
    };
    let mut field = root.to_string();
    for seg in err.instance_path().segments() {
        match seg {
            jsonschema::paths::LocationSegment::Property(p) => {
                field.push('.');
                field.push_str(&p);
            }
            jsonschema::paths::LocationSegment::Index(i) => {
                field.push_str(&format!("[{i}]"));
            }
        }
    }
    if let jsonschema::error::ValidationErrorKind::Required { property } = err.kind() {
        field.push('.');
        match property {
            Value::String(s) => field.push_str(s),
            other => field.push_str(&other.to_string()),
        }
    }
    Err(StoreError::validation(field, err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validator() -> ItemValidator {
        let schema = json!({
            "type": "object",
            "required": ["question"],
            "properties": {
                "question": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}}
            }
        });
        ItemValidator::new(Some(&schema), Some(&json!({"type": "string"}))).unwrap()
    }

    fn field_of(r: Result<(), StoreError>) -> String {
        match r {
            Err(StoreError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn names_the_failing_field() {
        let v = validator();
        assert_eq!(
            field_of(v.check("", &json!({"question": 3}), None)),
            "input.question"
        );
        assert_eq!(field_of(v.check("", &json!({}), None)), "input.question");
        assert_eq!(
            field_of(v.check("", &json!({"question": "q", "tags": ["a", 1]}), None)),
            "input.tags[1]"
        );
        assert_eq!(
            field_of(v.check("items[3].", &json!({"question": "q"}), Some(&json!(4)))),
            "items[3].expectedOutput"
        );
        assert!(v.check("", &json!({"question": "q"}), None).is_ok());
    }

    #[test]
    fn rejects_an_invalid_schema() {
        let bad = json!({"type": "no-such-type"});
        let Err(e) = ItemValidator::new(Some(&bad), None) else {
            panic!("accepted an invalid schema");
        };
        assert!(matches!(e, StoreError::Validation { field, .. } if field == "inputSchema"));
    }
}
