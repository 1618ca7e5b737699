//! Host bindings generated from `plugin-sdk/wit/assay.wit`.
//!
//! Each world gets its own `bindgen!`. The target world reuses the scorer
//! world's `types` interface (`with`), so an [`Item`](scorer::assay::plugin::types::Item)
//! is one Rust type for both kinds of plugin.

/// Bindings for the `scorer-plugin` world.
pub mod scorer {
    wasmtime::component::bindgen!({
        path: "../../../plugin-sdk/wit",
        world: "scorer-plugin",
        exports: { default: async },
    });
}

/// Bindings for the `target-plugin` world.
pub mod target {
    wasmtime::component::bindgen!({
        path: "../../../plugin-sdk/wit",
        world: "target-plugin",
        exports: { default: async },
        with: {
            "assay:plugin/types": super::scorer::assay::plugin::types,
        },
    });
}

pub use scorer::assay::plugin::types::{Item, PluginError, PluginInfo as WitPluginInfo};
