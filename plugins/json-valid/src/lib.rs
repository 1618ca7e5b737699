//! `json-valid`: 1 when the output is valid JSON (and, with a `schema`
//! config, valid against that JSON Schema), else 0.
//!
//! A string output must parse as JSON (a target that answers with JSON text);
//! any other output is already a JSON value and is valid as is. With config
//! `{"schema": {...}}` the parsed value is also validated against the schema
//! (drafts 4, 6, 7, 2019-09 and 2020-12; only local `$ref`s, nothing is
//! fetched); the reason lists the first failing paths. An invalid schema is
//! invalid input. A missing output scores 0.

use assay_plugin_sdk::prelude::*;
use serde::Deserialize;

/// The json-valid scorer.
pub struct JsonValid;

/// Config of [`JsonValid`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// A JSON Schema the output must satisfy.
    pub schema: Option<Value>,
}

/// How many failing paths the reason lists at most.
const MAX_LISTED_ERRORS: usize = 5;

impl Scorer for JsonValid {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "json-valid",
            "JSON valid",
            "1 when the output is valid JSON (a string output must parse) and, with a `schema` config, matches that JSON Schema; else 0.",
        )
    }

    fn score(input: ScoreInput) -> Result<Score, PluginError> {
        let config: Config = input.config()?;
        let validator = match &config.schema {
            Some(schema) => Some(jsonschema::validator_for(schema).map_err(|e| {
                PluginError::invalid_input(format!("invalid config at `schema`: {e}"))
            })?),
            None => None,
        };
        let value = match input.output {
            None => return Ok(Score::new(0.0).with_reason("the target produced no output")),
            Some(Value::String(text)) => {
                match assay_plugin_sdk::serde_json::from_str::<Value>(&text) {
                    Ok(value) => value,
                    Err(e) => {
                        return Ok(
                            Score::new(0.0).with_reason(format!("output is not valid JSON: {e}"))
                        );
                    }
                }
            }
            Some(value) => value,
        };
        let Some(validator) = validator else {
            return Ok(Score::new(1.0).with_reason("output is valid JSON"));
        };
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| {
                let path = e.instance_path().to_string();
                let path = if path.is_empty() {
                    "/".to_owned()
                } else {
                    path
                };
                format!("{path}: {e}")
            })
            .collect();
        if errors.is_empty() {
            return Ok(Score::new(1.0).with_reason("output is valid JSON and matches the schema"));
        }
        let listed = errors
            .iter()
            .take(MAX_LISTED_ERRORS)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        let more = errors.len().saturating_sub(MAX_LISTED_ERRORS);
        let reason = if more > 0 {
            format!("output does not match the schema: {listed}; and {more} more")
        } else {
            format!("output does not match the schema: {listed}")
        };
        Ok(Score::new(0.0)
            .with_reason(reason)
            .with_metadata(json!({ "errors": errors.len() })))
    }
}

export_scorer!(JsonValid);

#[cfg(test)]
mod tests {
    use super::*;
    use assay_plugin_sdk::testing;

    fn score(output: Value, config: Value) -> Result<Score, PluginError> {
        let input = ScoreInput::new(Item::new("1", json!("q")))
            .with_output(output)
            .with_config(config);
        testing::score::<JsonValid>(&input)
    }

    #[test]
    fn string_outputs_must_parse() {
        assert_eq!(score(json!(r#"{"a": 1}"#), Value::Null).unwrap().value, 1.0);
        assert_eq!(score(json!("42"), Value::Null).unwrap().value, 1.0);
        let s = score(json!("{not json"), Value::Null).unwrap();
        assert_eq!(s.value, 0.0);
        assert!(s.reason.unwrap().contains("not valid JSON"));
        assert_eq!(score(json!("hello"), Value::Null).unwrap().value, 0.0);
    }

    #[test]
    fn non_string_outputs_are_valid() {
        assert_eq!(score(json!({"a": [1, 2]}), Value::Null).unwrap().value, 1.0);
        assert_eq!(score(json!(null), Value::Null).unwrap().value, 1.0);
    }

    #[test]
    fn schema_validation_lists_failing_paths() {
        let schema = json!({"schema": {
            "type": "object",
            "required": ["name", "age"],
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}
        }});
        assert_eq!(
            score(json!({"name": "Ada", "age": 36}), schema.clone())
                .unwrap()
                .value,
            1.0
        );
        assert_eq!(
            score(json!(r#"{"name": "Ada", "age": 36}"#), schema.clone())
                .unwrap()
                .value,
            1.0
        );
        let s = score(json!({"name": 7, "age": -1}), schema.clone()).unwrap();
        assert_eq!(s.value, 0.0);
        let reason = s.reason.unwrap();
        assert!(
            reason.contains("/name") && reason.contains("/age"),
            "{reason}"
        );
        assert_eq!(s.metadata, Some(json!({"errors": 2})));
        let s = score(json!({"name": "Ada"}), schema).unwrap();
        assert!(s.reason.unwrap().contains("age"));
    }

    #[test]
    fn invalid_schema_is_invalid_input() {
        let err = score(json!({}), json!({"schema": {"type": "no-such-type"}})).unwrap_err();
        assert!(matches!(err, PluginError::InvalidInput(_)), "{err:?}");
        assert!(err.message().contains("schema"), "{err}");
    }

    #[test]
    fn missing_output_scores_zero() {
        let input = ScoreInput::new(Item::new("1", json!("q")));
        assert_eq!(testing::score::<JsonValid>(&input).unwrap().value, 0.0);
    }
}
