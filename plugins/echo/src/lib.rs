//! `echo`: a target whose output is the item's input, unchanged.
//!
//! Useful to score a dataset's inputs directly, and as the smallest target to
//! check that the plugin pipeline works.

use assay_plugin_sdk::prelude::*;

/// The echo target.
pub struct Echo;

impl Target for Echo {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "echo",
            "Echo",
            "Returns the item's input as the output, unchanged.",
        )
    }

    fn run(input: TargetInput) -> Result<TargetOutput, PluginError> {
        Ok(TargetOutput::new(input.item.input))
    }
}

export_target!(Echo);

#[cfg(test)]
mod tests {
    use super::*;
    use assay_plugin_sdk::testing;

    #[test]
    fn output_is_the_input() {
        let input = json!({"question": "2+2?", "n": [1, 2.5, null]});
        let out = testing::run::<Echo>(&TargetInput::new(Item::new("1", input.clone()))).unwrap();
        assert_eq!(out.output, input);
        assert_eq!(out.trace_id, None);
    }

    #[test]
    fn info_id_is_valid() {
        assert_eq!(Echo::info().id, "echo");
        assert!(Echo::info().has_valid_id());
    }
}
