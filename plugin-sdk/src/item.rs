//! [`Item`], the dataset item a plugin sees, and JSON helpers shared by
//! scorer and target inputs.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::PluginError;

/// One dataset item as a plugin sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The item's id in its dataset.
    pub id: String,
    /// The item's input.
    pub input: Value,
    /// The expected output, when the dataset has one for this item.
    pub ground_truth: Option<Value>,
    /// Free-form metadata / context attached to the item.
    pub metadata: Option<Value>,
}

impl Item {
    /// An item with an id and an input, no ground truth and no metadata.
    pub fn new(id: impl Into<String>, input: Value) -> Self {
        Self {
            id: id.into(),
            input,
            ground_truth: None,
            metadata: None,
        }
    }

    /// Sets the ground truth (builder style, handy in tests).
    pub fn with_ground_truth(mut self, ground_truth: Value) -> Self {
        self.ground_truth = Some(ground_truth);
        self
    }

    /// Sets the metadata (builder style, handy in tests).
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// The input as text (see [`json_text`]).
    pub fn input_text(&self) -> String {
        json_text(&self.input)
    }

    /// The ground truth, or an invalid-input error naming the item when the
    /// item has none (or it is JSON `null`).
    pub fn require_ground_truth(&self) -> Result<&Value, PluginError> {
        match &self.ground_truth {
            Some(v) if !v.is_null() => Ok(v),
            _ => Err(PluginError::invalid_input(format!(
                "item `{}` has no ground truth",
                self.id
            ))),
        }
    }

    /// The ground truth as text (see [`json_text`]), `None` when absent.
    pub fn ground_truth_text(&self) -> Option<String> {
        self.ground_truth.as_ref().map(json_text)
    }

    /// The input deserialized into your own type.
    pub fn input_as<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        from_value("input", &self.input)
    }
}

/// The text of a JSON value: a JSON string is its text, any other value is
/// its compact JSON (`{"a":1}`, `42`, `true`, `null`).
///
/// ```
/// use assay_plugin_sdk::json_text;
/// use serde_json::json;
/// assert_eq!(json_text(&json!("Paris")), "Paris");
/// assert_eq!(json_text(&json!({"city": "Paris"})), r#"{"city":"Paris"}"#);
/// ```
pub fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Deserializes `value` into `T`; errors are invalid input and name the
/// path of the offending field, e.g. ``invalid config at `ignoreCase`: ...``.
pub(crate) fn from_value<T: DeserializeOwned>(what: &str, value: &Value) -> Result<T, PluginError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        if path == "." {
            PluginError::invalid_input(format!("invalid {what}: {}", err.inner()))
        } else {
            PluginError::invalid_input(format!("invalid {what} at `{path}`: {}", err.inner()))
        }
    })
}

/// Parses a run's per-plugin config: absent or `null` gives `T::default()`.
pub(crate) fn parse_config<T: DeserializeOwned + Default>(
    config: Option<&Value>,
) -> Result<T, PluginError> {
    match config {
        None | Some(Value::Null) => Ok(T::default()),
        Some(value) => from_value("config", value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Config {
        #[serde(default)]
        ignore_case: bool,
        #[allow(dead_code)]
        nested: Option<Nested>,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    struct Nested {
        #[allow(dead_code)]
        limit: u32,
    }

    #[test]
    fn text_of_values() {
        assert_eq!(json_text(&json!("a b")), "a b");
        assert_eq!(json_text(&json!(1.5)), "1.5");
        assert_eq!(json_text(&json!([1, "x"])), r#"[1,"x"]"#);
        assert_eq!(json_text(&Value::Null), "null");
    }

    #[test]
    fn config_absent_or_null_is_default() {
        let c: Config = parse_config(None).unwrap();
        assert!(!c.ignore_case);
        let c: Config = parse_config(Some(&Value::Null)).unwrap();
        assert!(!c.ignore_case);
        let c: Config = parse_config(Some(&json!({"ignoreCase": true}))).unwrap();
        assert!(c.ignore_case);
    }

    #[test]
    fn config_errors_name_the_field() {
        let err = parse_config::<Config>(Some(&json!({"ignoreCase": "yes"}))).unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(_)));
        assert!(err.message().contains("`ignoreCase`"), "{err}");

        let err = parse_config::<Config>(Some(&json!({"nested": {"limit": -1}}))).unwrap_err();
        assert!(err.message().contains("`nested.limit`"), "{err}");

        let err = parse_config::<Config>(Some(&json!({"ignorecase": true}))).unwrap_err();
        assert!(err.message().contains("ignorecase"), "{err}");
    }

    #[test]
    fn ground_truth_required() {
        let item = Item::new("q1", json!("in"));
        let err = item.require_ground_truth().unwrap_err();
        assert!(err.message().contains("q1"), "{err}");
        let item = item.with_ground_truth(json!("out"));
        assert_eq!(item.require_ground_truth().unwrap(), &json!("out"));
        assert_eq!(item.ground_truth_text().as_deref(), Some("out"));
    }
}
