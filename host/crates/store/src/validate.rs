//! JSON Schema validation of items against their dataset's schemas.

use jsonschema::Validator;
use serde_json::Value;

use crate::error::StoreError;
use crate::models::{DatasetItem, NewItem};

/// How many failing items a schema change reports at most.
pub const MAX_REPORTED_FAILURES: usize = 10;

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
