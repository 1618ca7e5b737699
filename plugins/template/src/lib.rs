//! `template`: a target whose output is a string rendered from the config
//! `template`, e.g. `{"template": "Q: {{input.question}}\nA:"}`.
//!
//! Placeholders are `{{path}}` (spaces inside the braces are allowed):
//!
//! | placeholder | value |
//! | --- | --- |
//! | `{{id}}` | the item id |
//! | `{{input}}`, `{{input.a.b}}` | the item input, or a field inside it |
//! | `{{groundTruth}}`, `{{groundTruth.a}}` | the ground truth, or a field inside it |
//! | `{{metadata}}`, `{{metadata.a}}` | the item metadata, or a field inside it |
//!
//! A numeric path segment indexes an array (`{{input.messages.0.content}}`).
//! A value is inserted as its text: a string as is, anything else as compact
//! JSON. A path that does not exist, an unknown root, an unclosed `{{` or a
//! missing `template` is invalid input naming the problem. There is no
//! escape for a literal `{{`.

use assay_plugin_sdk::prelude::*;
use assay_plugin_sdk::template::render;
use serde::Deserialize;

/// The template target.
pub struct Template;

/// Config of [`Template`].
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// The template (required).
    pub template: Option<String>,
}

impl Target for Template {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "template",
            "Template",
            "Renders the config `template` with {{input.x}}, {{groundTruth}}, {{metadata.x}} and {{id}} placeholders; the output is the rendered string.",
        )
    }

    fn run(input: TargetInput) -> Result<TargetOutput, PluginError> {
        let config: Config = input.config()?;
        let Some(template) = config.template else {
            return Err(PluginError::invalid_input("missing config `template`"));
        };
        Ok(TargetOutput::new(Value::String(render(
            &template,
            &input.item,
        )?)))
    }
}

export_target!(Template);

#[cfg(test)]
mod tests {
    use super::*;
    use assay_plugin_sdk::testing;

    fn item() -> Item {
        Item::new(
            "item-7",
            // Keys in sorted order: the compact JSON below is then the same
            // whether or not serde_json's `preserve_order` feature is on.
            json!({"n": 4, "question": "2+2?", "tags": ["math", {"level": 1}]}),
        )
        .with_ground_truth(json!("4"))
        .with_metadata(json!({"source": "quiz"}))
    }

    fn run(template: &str) -> Result<Value, PluginError> {
        let input = TargetInput::new(item()).with_config(json!({ "template": template }));
        testing::run::<Template>(&input).map(|o| o.output)
    }

    #[test]
    fn renders_every_kind_of_placeholder() {
        let out = run("[{{id}}] Q: {{ input.question }} ({{metadata.source}}, {{input.tags.0}}) -> {{groundTruth}}").unwrap();
        assert_eq!(out, json!("[item-7] Q: 2+2? (quiz, math) -> 4"));
    }

    #[test]
    fn non_string_values_render_as_compact_json() {
        assert_eq!(
            run("{{input.n}} {{input.tags.1}}").unwrap(),
            json!(r#"4 {"level":1}"#)
        );
        assert_eq!(
            run("{{input}}").unwrap(),
            json!(r#"{"n":4,"question":"2+2?","tags":["math",{"level":1}]}"#)
        );
    }

    #[test]
    fn text_without_placeholders_is_unchanged() {
        assert_eq!(
            run("plain } text { here").unwrap(),
            json!("plain } text { here")
        );
        assert_eq!(run("").unwrap(), json!(""));
    }

    #[test]
    fn missing_paths_are_invalid_input_naming_them() {
        for (template, named) in [
            ("{{input.answer}}", "input.answer"),
            ("{{input.tags.5}}", "input.tags.5"),
            ("{{input.question.deeper}}", "input.question.deeper"),
            ("{{output}}", "output"),
            ("{{id.x}}", "id.x"),
        ] {
            let err = run(template).unwrap_err();
            assert!(
                matches!(err, PluginError::InvalidInput(_)),
                "{template}: {err:?}"
            );
            assert!(err.message().contains(named), "{template}: {err}");
        }
        let no_metadata = TargetInput::new(Item::new("1", json!({})))
            .with_config(json!({"template": "{{metadata.x}}"}));
        assert!(
            testing::run::<Template>(&no_metadata)
                .unwrap_err()
                .message()
                .contains("metadata.x")
        );
    }

    #[test]
    fn unclosed_braces_and_missing_template_are_invalid_input() {
        assert!(
            run("hello {{input")
                .unwrap_err()
                .message()
                .contains("never closed")
        );
        let err = testing::run::<Template>(&TargetInput::new(item())).unwrap_err();
        assert!(err.message().contains("template"), "{err}");
    }
}
