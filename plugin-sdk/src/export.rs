//! The glue between the WIT contract and the plain-Rust traits: generated
//! bindings (hidden), the shims the export macros call, and the macros.
//!
//! Authors never see wit-bindgen types: [`export_scorer!`] and
//! [`export_target!`] implement the generated `Guest` traits on a hidden type
//! that forwards to the author's [`Scorer`] / [`Target`] impl, converting JSON
//! text to [`serde_json::Value`] and back.

use serde_json::Value;

use crate::{
    Item, Needs, PluginError, PluginInfo, Score, ScoreInput, Scorer, Target, TargetInput,
    TargetOutput,
};

/// Generated guest bindings for the `scorer-plugin` world.
#[doc(hidden)]
pub mod scorer_bindings {
    wit_bindgen::generate!({
        path: "wit/v0.2",
        world: "scorer-plugin",
        pub_export_macro: true,
        export_macro_name: "export_scorer_world",
        default_bindings_module: "::assay_plugin_sdk::__private::scorer_bindings",
        runtime_path: "::assay_plugin_sdk::__private::wit_bindgen::rt",
    });
}

/// Generated guest bindings for the `target-plugin` world.
#[doc(hidden)]
pub mod target_bindings {
    wit_bindgen::generate!({
        path: "wit/v0.2",
        world: "target-plugin",
        pub_export_macro: true,
        export_macro_name: "export_target_world",
        default_bindings_module: "::assay_plugin_sdk::__private::target_bindings",
        runtime_path: "::assay_plugin_sdk::__private::wit_bindgen::rt",
    });
}

use scorer_bindings::exports::assay::plugin::scorer as wit_scorer;
use target_bindings::exports::assay::plugin::target as wit_target;

/// An item as it crosses the boundary: JSON text.
pub(crate) struct JsonItem<'a> {
    pub id: &'a str,
    pub input: &'a str,
    pub ground_truth: Option<&'a str>,
    pub metadata: Option<&'a str>,
}

impl<'a> JsonItem<'a> {
    fn parse(&self) -> Result<Item, PluginError> {
        Ok(Item {
            id: self.id.to_owned(),
            input: parse_json("item input", self.input)?,
            ground_truth: parse_opt("item ground truth", self.ground_truth)?,
            metadata: parse_opt("item metadata", self.metadata)?,
        })
    }
}

fn parse_json(what: &str, text: &str) -> Result<Value, PluginError> {
    serde_json::from_str(text)
        .map_err(|err| PluginError::invalid_input(format!("{what} is not valid JSON: {err}")))
}

fn parse_opt(what: &str, text: Option<&str>) -> Result<Option<Value>, PluginError> {
    text.map(|t| parse_json(what, t)).transpose()
}

/// The scorer call as the wasm export runs it, on JSON text.
pub(crate) fn score_json<S: Scorer>(
    item: JsonItem<'_>,
    output: Option<&str>,
    config: Option<&str>,
) -> Result<Score, PluginError> {
    let input = ScoreInput {
        item: item.parse()?,
        output: parse_opt("output", output)?,
        config: parse_opt("config", config)?,
    };
    let score = S::score(input)?;
    score.check()?;
    Ok(score)
}

/// The target call as the wasm export runs it, on JSON text.
pub(crate) fn run_json<T: Target>(
    item: JsonItem<'_>,
    config: Option<&str>,
) -> Result<TargetOutput, PluginError> {
    let input = TargetInput {
        item: item.parse()?,
        config: parse_opt("config", config)?,
    };
    T::run(input)
}

macro_rules! convert_error {
    ($module:path) => {{
        use $module as m;
        |err: PluginError| match err {
            PluginError::InvalidInput(msg) => m::PluginError::InvalidInput(msg),
            PluginError::Transient(msg) => m::PluginError::Transient(msg),
            PluginError::Failed(msg) => m::PluginError::Failed(msg),
        }
    }};
}

/// Called by [`export_scorer!`]: `info`.
#[doc(hidden)]
pub fn scorer_info<S: Scorer>() -> wit_scorer::PluginInfo {
    let PluginInfo {
        id,
        name,
        description,
        needs: Needs { hosts, secrets },
    } = S::info();
    wit_scorer::PluginInfo {
        id,
        name,
        description,
        needs: scorer_bindings::assay::plugin::types::Needs { hosts, secrets },
    }
}

/// Called by [`export_scorer!`]: `score`.
#[doc(hidden)]
pub fn scorer_score<S: Scorer>(
    item: wit_scorer::Item,
    output: Option<String>,
    config: Option<String>,
) -> Result<wit_scorer::ScoreResult, wit_scorer::PluginError> {
    let item = JsonItem {
        id: &item.id,
        input: &item.input,
        ground_truth: item.ground_truth.as_deref(),
        metadata: item.metadata.as_deref(),
    };
    score_json::<S>(item, output.as_deref(), config.as_deref())
        .map(|score| wit_scorer::ScoreResult {
            value: score.value,
            reason: score.reason,
            metadata: score.metadata.map(|m| m.to_string()),
        })
        .map_err(convert_error!(wit_scorer))
}

/// Called by [`export_target!`]: `info`.
#[doc(hidden)]
pub fn target_info<T: Target>() -> wit_target::PluginInfo {
    let PluginInfo {
        id,
        name,
        description,
        needs: Needs { hosts, secrets },
    } = T::info();
    wit_target::PluginInfo {
        id,
        name,
        description,
        needs: target_bindings::assay::plugin::types::Needs { hosts, secrets },
    }
}

/// Called by [`export_target!`]: `run`.
#[doc(hidden)]
pub fn target_run<T: Target>(
    item: wit_target::Item,
    config: Option<String>,
) -> Result<wit_target::TargetOutput, wit_target::PluginError> {
    let item = JsonItem {
        id: &item.id,
        input: &item.input,
        ground_truth: item.ground_truth.as_deref(),
        metadata: item.metadata.as_deref(),
    };
    run_json::<T>(item, config.as_deref())
        .map(|out| wit_target::TargetOutput {
            output: out.output.to_string(),
            trace_id: out.trace_id,
            metadata: out.metadata.map(|m| m.to_string()),
        })
        .map_err(convert_error!(wit_target))
}

/// Exports a [`Scorer`](crate::Scorer) as the plugin's `scorer` interface.
///
/// Use it once, at the top level of the plugin crate:
///
/// ```
/// use assay_plugin_sdk::prelude::*;
///
/// struct AlwaysOne;
///
/// impl Scorer for AlwaysOne {
///     fn info() -> PluginInfo {
///         PluginInfo::new("always-one", "Always one", "Scores every output 1")
///     }
///     fn score(_input: ScoreInput) -> Result<Score, PluginError> {
///         Ok(Score::new(1.0))
///     }
/// }
///
/// export_scorer!(AlwaysOne);
/// ```
///
/// The export only exists when compiling for `wasm32`; natively the macro
/// just checks that the type implements `Scorer`, so the crate's unit tests
/// run with a plain `cargo test`.
#[macro_export]
macro_rules! export_scorer {
    ($scorer:ty) => {
        const _: () = {
            fn __assay_is_scorer<S: $crate::Scorer>() {}
            let _ = __assay_is_scorer::<$scorer>;
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__private::scorer_bindings::exports::assay::plugin::scorer as __wit;

            struct __AssayScorerExport;

            impl __wit::Guest for __AssayScorerExport {
                fn info() -> __wit::PluginInfo {
                    $crate::__private::scorer_info::<$scorer>()
                }
                fn score(
                    item: __wit::Item,
                    output: ::core::option::Option<$crate::__private::String>,
                    config: ::core::option::Option<$crate::__private::String>,
                ) -> ::core::result::Result<__wit::ScoreResult, __wit::PluginError> {
                    $crate::__private::scorer_score::<$scorer>(item, output, config)
                }
            }

            $crate::__private::scorer_bindings::export_scorer_world!(
                __AssayScorerExport with_types_in $crate::__private::scorer_bindings
            );
        };
    };
}

/// Exports a [`Target`](crate::Target) as the plugin's `target` interface.
///
/// ```
/// use assay_plugin_sdk::prelude::*;
///
/// struct Echo;
///
/// impl Target for Echo {
///     fn info() -> PluginInfo {
///         PluginInfo::new("echo", "Echo", "Returns the item's input")
///     }
///     fn run(input: TargetInput) -> Result<TargetOutput, PluginError> {
///         Ok(TargetOutput::new(input.item.input))
///     }
/// }
///
/// export_target!(Echo);
/// ```
///
/// Like [`export_scorer!`](crate::export_scorer!), the export only exists on `wasm32`.
#[macro_export]
macro_rules! export_target {
    ($target:ty) => {
        const _: () = {
            fn __assay_is_target<T: $crate::Target>() {}
            let _ = __assay_is_target::<$target>;
        };

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__private::target_bindings::exports::assay::plugin::target as __wit;

            struct __AssayTargetExport;

            impl __wit::Guest for __AssayTargetExport {
                fn info() -> __wit::PluginInfo {
                    $crate::__private::target_info::<$target>()
                }
                fn run(
                    item: __wit::Item,
                    config: ::core::option::Option<$crate::__private::String>,
                ) -> ::core::result::Result<__wit::TargetOutput, __wit::PluginError> {
                    $crate::__private::target_run::<$target>(item, config)
                }
            }

            $crate::__private::target_bindings::export_target_world!(
                __AssayTargetExport with_types_in $crate::__private::target_bindings
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    struct Echoes;

    impl Scorer for Echoes {
        fn info() -> PluginInfo {
            PluginInfo::new("echoes", "Echoes", "Scores the config's `value`")
        }
        fn score(input: ScoreInput) -> Result<Score, PluginError> {
            let value = input
                .config
                .as_ref()
                .and_then(|c| c["value"].as_f64())
                .unwrap_or(1.0);
            Ok(Score::new(value).with_metadata(serde_json::json!({"id": input.item.id})))
        }
    }

    impl Target for Echoes {
        fn info() -> PluginInfo {
            PluginInfo::new("echoes", "Echoes", "Returns the item")
                .needs_host("api.example.com")
                .needs_secret("API_KEY")
        }
        fn run(input: TargetInput) -> Result<TargetOutput, PluginError> {
            let item = input.item;
            let out = TargetOutput::new(serde_json::json!([
                item.input,
                item.ground_truth,
                item.metadata
            ]));
            Ok(match input.config {
                Some(config) => out.with_metadata(config),
                None => out,
            })
        }
    }

    fn item<'a>(input: &'a str, ground_truth: Option<&'a str>) -> wit_scorer::Item {
        wit_scorer::Item {
            id: "i1".into(),
            input: input.into(),
            ground_truth: ground_truth.map(Into::into),
            metadata: None,
        }
    }

    #[test]
    fn score_crosses_the_boundary_as_json_text() {
        let result = scorer_score::<Echoes>(item("1", None), Some("2".into()), None).unwrap();
        assert_eq!(result.value, 1.0);
        assert_eq!(result.metadata.as_deref(), Some(r#"{"id":"i1"}"#));
    }

    #[test]
    fn invalid_json_from_the_host_is_invalid_input_naming_the_field() {
        let cases = [
            (item("{oops", None), None, None, "item input"),
            (item("1", Some("[")), None, None, "item ground truth"),
            (item("1", None), Some("nope".to_owned()), None, "output"),
            (item("1", None), None, Some("{".to_owned()), "config"),
        ];
        for (item, output, config, named) in cases {
            match scorer_score::<Echoes>(item, output, config) {
                Err(wit_scorer::PluginError::InvalidInput(msg)) => {
                    assert!(
                        msg.starts_with(&format!("{named} is not valid JSON")),
                        "{msg}"
                    )
                }
                other => panic!("expected invalid-input for {named}, got {other:?}"),
            }
        }
    }

    #[test]
    fn out_of_range_scores_become_failed_errors() {
        for bad in ["1.5", "-0.5"] {
            let config = format!(r#"{{"value": {bad}}}"#);
            match scorer_score::<Echoes>(item("1", None), None, Some(config)) {
                Err(wit_scorer::PluginError::Failed(msg)) => assert!(msg.contains(bad), "{msg}"),
                other => panic!("expected failed for {bad}, got {other:?}"),
            }
        }
    }

    #[test]
    fn info_is_passed_through() {
        let scorer = scorer_info::<Echoes>();
        assert_eq!(scorer.id, "echoes");
        assert!(scorer.needs.hosts.is_empty() && scorer.needs.secrets.is_empty());
        let target = target_info::<Echoes>();
        assert_eq!(target.name, "Echoes");
        assert_eq!(target.needs.hosts, ["api.example.com"]);
        assert_eq!(target.needs.secrets, ["API_KEY"]);
    }

    #[test]
    fn target_metadata_crosses_the_boundary_as_json_text() {
        let item = wit_target::Item {
            id: "t".into(),
            input: "1".into(),
            ground_truth: None,
            metadata: None,
        };
        let config = r#"{"usage":{"totalTokens":7}}"#;
        let out = target_run::<Echoes>(item, Some(config.into())).unwrap();
        assert_eq!(out.metadata.as_deref(), Some(config));
        let input = TargetInput::new(Item::new("t", serde_json::json!(1)))
            .with_config(serde_json::json!({"model": "m"}));
        let native = crate::testing::run::<Echoes>(&input).unwrap();
        assert_eq!(native.metadata, Some(serde_json::json!({"model": "m"})));
    }

    #[test]
    fn target_run_round_trips_item_and_output() {
        let item = wit_target::Item {
            id: "t".into(),
            input: r#"{"q":"x"}"#.into(),
            ground_truth: Some("\"y\"".into()),
            metadata: Some("null".into()),
        };
        let out = target_run::<Echoes>(item, None).unwrap();
        assert_eq!(out.output, r#"[{"q":"x"},"y",null]"#);
        assert_eq!(out.trace_id, None);
        assert_eq!(out.metadata, None);
    }

    #[test]
    fn testing_helpers_apply_the_same_checks() {
        let input = ScoreInput::new(Item::new("1", serde_json::json!(null)))
            .with_config(serde_json::json!({"value": 2.0}));
        let err = crate::testing::score::<Echoes>(&input).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Failed);
    }
}
