#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

// Lets the generated bindings name this crate by its public path
// (`::assay_plugin_sdk::...`) both here and in plugin crates.
extern crate self as assay_plugin_sdk;

mod error;
mod export;
pub mod http;
mod info;
mod item;
pub mod openai;
mod scorer;
mod target;
pub mod template;
pub mod testing;

pub use error::{ErrorKind, PluginError};
pub use info::{Needs, PluginInfo};
pub use item::{Item, json_text};
pub use scorer::{Against, Score, ScoreInput, Scorer};
pub use serde_json;
pub use target::{Target, TargetInput, TargetOutput};

/// The version of the WIT contract (`package assay:plugin@X.Y.Z`) this SDK
/// builds plugins against. The host refuses components built against a
/// contract it does not speak.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// Everything a plugin usually needs: `use assay_plugin_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Against, Item, PluginError, PluginInfo, Score, ScoreInput, Scorer, Target, TargetInput,
        TargetOutput, export_scorer, export_target, json_text,
    };
    pub use serde_json::{Value, json};
}

/// Implementation details used by the export macros. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{
        scorer_bindings, scorer_info, scorer_score, target_bindings, target_info, target_run,
    };
    pub use std::string::String;
    pub use wit_bindgen;
}

#[cfg(test)]
mod tests {
    #[test]
    fn contract_version_matches_the_wit_package() {
        let wit = include_str!("../wit/v0.2/assay.wit");
        let line = wit
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("package "))
            .expect("the WIT file declares a package");
        let version = line
            .trim_start_matches("package assay:plugin@")
            .trim_end_matches(';');
        assert_ne!(version, line, "unexpected package line: {line}");
        assert_eq!(version, super::CONTRACT_VERSION);
    }

    /// The tutorial's `src/lib.rs` in the README (two code blocks, plus
    /// hidden doctest lines) is `examples/my_scorer.rs`, whose tests
    /// `cargo test` runs.
    #[test]
    fn readme_tutorial_matches_the_example() {
        let readme = include_str!("../README.md");
        let example = include_str!("../examples/my_scorer.rs");
        let mut parts = Vec::new();
        let mut lines = readme.lines();
        while let Some(line) = lines.next() {
            if line.starts_with("<!-- tutorial: examples/my_scorer.rs") {
                let part: Vec<&str> = lines
                    .by_ref()
                    .skip(1) // the opening fence
                    .take_while(|l| !l.starts_with("```"))
                    .filter(|l| *l != "#" && !l.starts_with("# "))
                    .collect();
                parts.push(part.join("\n").trim().to_owned());
            }
        }
        assert_eq!(parts.len(), 2, "tutorial blocks not found in README.md");
        assert_eq!(parts.join("\n\n"), example.trim());
    }
}
