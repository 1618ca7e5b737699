//! Bindings of contract 0.1, generated from `plugin-sdk/wit/v0.1/assay.wit`.
//!
//! Each world gets its own `bindgen!`. The target world reuses the scorer
//! world's `types` interface (`with`), so an item is one Rust type for both
//! kinds of plugin.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::{GuestError, GuestItem, InfoReply, Request, Response, ScoreReply, TargetReply};
use crate::contract::wit_package_version;
use crate::sandbox::CallState;
use crate::types::PluginKind;

/// The WIT of this version.
pub(crate) const WIT: &str = include_str!("../../../../../plugin-sdk/wit/v0.1/assay.wit");

/// The version in the WIT's package line.
pub(crate) const VERSION: &str = wit_package_version(WIT);

mod scorer {
    wasmtime::component::bindgen!({
        path: "../../../plugin-sdk/wit/v0.1",
        world: "scorer-plugin",
        exports: { default: async },
    });
}

mod target {
    wasmtime::component::bindgen!({
        path: "../../../plugin-sdk/wit/v0.1",
        world: "target-plugin",
        exports: { default: async },
        with: {
            "assay:plugin/types": super::scorer::assay::plugin::types,
        },
    });
}

use scorer::assay::plugin::types::{Item, PluginError, PluginInfo as WitPluginInfo};
use scorer::exports::assay::plugin::scorer::ScoreResult;
use scorer::{ScorerPlugin, ScorerPluginPre};
use target::exports::assay::plugin::target::TargetOutput;
use target::{TargetPlugin, TargetPluginPre};

/// A component of either world, pre-instantiated with these bindings.
pub(crate) enum Pre {
    Scorer(ScorerPluginPre<CallState>),
    Target(TargetPluginPre<CallState>),
}

/// Checks the component's exports against the world of `kind` and
/// pre-instantiates it.
pub(crate) fn prepare(
    kind: PluginKind,
    instance_pre: InstancePre<CallState>,
) -> wasmtime::Result<super::Pre> {
    let pre = match kind {
        PluginKind::Scorer => Pre::Scorer(ScorerPluginPre::new(instance_pre)?),
        PluginKind::Target => Pre::Target(TargetPluginPre::new(instance_pre)?),
    };
    Ok(super::Pre::V0_1(pre))
}

impl Pre {
    /// Instantiates and calls; the store is discarded afterwards.
    pub(crate) async fn invoke(
        &self,
        store: &mut Store<CallState>,
        request: Request,
    ) -> wasmtime::Result<Response> {
        match self {
            Pre::Scorer(pre) => {
                let instance: ScorerPlugin = pre.instantiate_async(&mut *store).await?;
                let guest = instance.assay_plugin_scorer();
                match request {
                    Request::Info => Ok(Response::Info(info(guest.call_info(&mut *store).await?))),
                    Request::Score {
                        item,
                        output,
                        config,
                    } => {
                        let result = guest
                            .call_score(
                                &mut *store,
                                &wit_item(item),
                                output.as_ref(),
                                config.as_ref(),
                            )
                            .await?;
                        Ok(Response::Score(
                            result.map(score_reply).map_err(guest_error),
                        ))
                    }
                    Request::Run { .. } => wasmtime::bail!("a scorer cannot run as a target"),
                }
            }
            Pre::Target(pre) => {
                let instance: TargetPlugin = pre.instantiate_async(&mut *store).await?;
                let guest = instance.assay_plugin_target();
                match request {
                    Request::Info => Ok(Response::Info(info(guest.call_info(&mut *store).await?))),
                    Request::Run { item, config } => {
                        let result = guest
                            .call_run(&mut *store, &wit_item(item), config.as_ref())
                            .await?;
                        Ok(Response::Run(result.map(target_reply).map_err(guest_error)))
                    }
                    Request::Score { .. } => wasmtime::bail!("a target cannot score"),
                }
            }
        }
    }
}

fn wit_item(item: GuestItem) -> Item {
    Item {
        id: item.id,
        input: item.input,
        ground_truth: item.ground_truth,
        metadata: item.metadata,
    }
}

/// 0.1 has no `needs`: a 0.1 plugin needs nothing.
fn info(info: WitPluginInfo) -> InfoReply {
    InfoReply {
        id: info.id,
        name: info.name,
        description: info.description,
        needs_hosts: Vec::new(),
        needs_secrets: Vec::new(),
    }
}

fn target_reply(out: TargetOutput) -> TargetReply {
    TargetReply {
        output: out.output,
        trace_id: out.trace_id,
        metadata: None,
    }
}

fn score_reply(score: ScoreResult) -> ScoreReply {
    ScoreReply {
        value: score.value,
        reason: score.reason,
        metadata: score.metadata,
    }
}

fn guest_error(e: PluginError) -> GuestError {
    match e {
        PluginError::InvalidInput(m) => GuestError::InvalidInput(m),
        PluginError::Transient(m) => GuestError::Transient(m),
        PluginError::Failed(m) => GuestError::Failed(m),
    }
}
