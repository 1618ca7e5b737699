//! `{{path}}` placeholders filled from an item, as the `template` target
//! and the network targets' prompt and body templates use them.
//!
//! | placeholder | value |
//! | --- | --- |
//! | `{{id}}` | the item id |
//! | `{{input}}`, `{{input.a.b}}` | the item input, or a field inside it |
//! | `{{groundTruth}}`, `{{groundTruth.a}}` | the ground truth, or a field inside it |
//! | `{{metadata}}`, `{{metadata.a}}` | the item metadata, or a field inside it |
//!
//! Spaces inside the braces are allowed. A numeric path segment indexes an
//! array (`{{input.messages.0.content}}`). A value is inserted as its text:
//! a string as is, anything else as compact JSON. A path that does not
//! exist, an unknown root or an unclosed `{{` is invalid input naming the
//! problem. There is no escape for a literal `{{`.

use serde_json::Value;

use crate::{Item, PluginError, json_text};

fn lookup<'v>(root: &'v Value, segments: &[&str]) -> Option<&'v Value> {
    segments
        .iter()
        .try_fold(root, |value, segment| match value {
            Value::Object(map) => map.get(*segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

fn resolve(item: &Item, path: &str) -> Result<String, PluginError> {
    let mut segments = path.split('.');
    let root = segments.next().unwrap_or_default();
    let rest: Vec<&str> = segments.collect();
    let missing = || {
        PluginError::invalid_input(format!(
            "template placeholder `{{{{{path}}}}}`: the item has no `{path}`"
        ))
    };
    let value = match root {
        "id" if rest.is_empty() => return Ok(item.id.clone()),
        "input" => Some(&item.input),
        "groundTruth" => item.ground_truth.as_ref(),
        "metadata" => item.metadata.as_ref(),
        _ => {
            return Err(PluginError::invalid_input(format!(
                "template placeholder `{{{{{path}}}}}`: unknown name `{root}`; use id, input, groundTruth or metadata"
            )));
        }
    };
    value
        .and_then(|v| lookup(v, &rest))
        .map(json_text)
        .ok_or_else(missing)
}

/// Renders `template` for `item` (see the crate docs).
pub fn render(template: &str, item: &Item) -> Result<String, PluginError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(PluginError::invalid_input(format!(
                "template: `{{{{` at byte {} is never closed",
                template.len() - rest.len() + start
            )));
        };
        out.push_str(&resolve(item, after[..end].trim())?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}
