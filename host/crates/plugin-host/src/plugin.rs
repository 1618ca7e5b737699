//! [`Plugin`]: a loaded, pre-instantiated component, and its calls.

use std::fmt;

use serde_json::Value;
use wasmtime::component::Component;

use crate::bindings::{GuestItem, Pre, Request, Response};
use crate::call::{Returned, call_info_blocking, execute, failure};
use crate::checks::{check_info, check_score, check_target_output, guest_error};
use crate::config::Limits;
use crate::contract;
use crate::error::{CallError, CallFailure, LoadError};
use crate::host::{PluginHost, export_names, import_names};
use crate::logs::CapturedLogs;
use crate::net_access::NetworkAccess;
use crate::types::{PluginInfo, PluginItem, PluginKind, ScoreOutcome, TargetOutcome};

/// A loaded plugin: compiled, checked against the contract, and
/// pre-instantiated. Each call gets a fresh instance in a fresh `Store`, so
/// no state crosses calls; calls may run concurrently.
pub struct Plugin {
    host: PluginHost,
    pre: Pre,
    kind: PluginKind,
    info: PluginInfo,
    digest: String,
    contract_version: String,
    size_bytes: usize,
    compiled_bytes: usize,
    imports: Vec<String>,
    exports: Vec<String>,
    from_cache: bool,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("kind", &self.kind)
            .field("info", &self.info)
            .field("digest", &self.digest)
            .field("contract_version", &self.contract_version)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Finds the component's world and contract version, pre-instantiates
    /// it with that version's bindings and calls `info` once.
    pub(crate) fn new(
        host: PluginHost,
        component: Component,
        digest: String,
        size_bytes: usize,
        from_cache: bool,
    ) -> Result<Self, LoadError> {
        let engine = host.engine();
        let image = component.image_range();
        let compiled_bytes = (image.end as usize).saturating_sub(image.start as usize);
        let exports = export_names(engine, &component);
        let imports = import_names(engine, &component);
        let detected = contract::detect(&exports)?;
        let instance_pre = host
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let kind = detected.kind;
        let pre =
            (detected.contract.prepare)(kind, instance_pre).map_err(|e| LoadError::WrongWorld {
                missing: format!(
                    "`{}@{}` with the functions of world `{}` ({e:#})",
                    kind.interface(),
                    detected.version,
                    kind.world()
                ),
                found: exports.clone(),
            })?;
        let info = check_info(call_info_blocking(&host, &pre)?)?;
        Ok(Self {
            host,
            pre,
            kind,
            info,
            digest,
            contract_version: detected.version,
            size_bytes,
            compiled_bytes,
            imports,
            exports,
            from_cache,
        })
    }

    /// Scorer or target.
    pub fn kind(&self) -> PluginKind {
        self.kind
    }

    /// What the plugin said about itself when loaded.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// `sha256:<hex>` of the component bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The contract version the component was built against (from its
    /// export name).
    pub fn contract_version(&self) -> &str {
        &self.contract_version
    }

    /// Size of the component in bytes.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// Size of the compiled native code this plugin keeps in memory (what
    /// a cache of loaded plugins should count against its budget).
    pub fn compiled_bytes(&self) -> usize {
        self.compiled_bytes
    }

    /// The component's import names (WASI interfaces it uses).
    pub fn imports(&self) -> &[String] {
        &self.imports
    }

    /// The component's export names.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }

    /// Whether the compiled code came from the disk cache.
    pub fn loaded_from_cache(&self) -> bool {
        self.from_cache
    }

    /// Runs a target plugin on one item in a fresh sandbox, with no
    /// network: see [`Plugin::run_target_with_network`].
    pub async fn run_target(
        &self,
        item: &PluginItem,
        config: Option<&Value>,
        limits: &Limits,
    ) -> Result<TargetOutcome, CallFailure> {
        self.run_target_with_network(item, config, limits, &NetworkAccess::none())
            .await
    }

    /// Runs a target plugin on one item in a fresh sandbox whose outbound
    /// HTTP is checked against `access` on every request. Secret values of
    /// `access` are redacted from everything returned.
    ///
    /// Cancel-safe: dropping the future stops the guest at its next epoch
    /// tick, frees its instance and closes its connections; nothing
    /// outlives the call.
    pub async fn run_target_with_network(
        &self,
        item: &PluginItem,
        config: Option<&Value>,
        limits: &Limits,
        access: &NetworkAccess,
    ) -> Result<TargetOutcome, CallFailure> {
        if let Some(failure) = self.wrong_kind(PluginKind::Target) {
            return Err(failure);
        }
        let request = Request::Run {
            item: guest_item(item),
            config: config.map(Value::to_string),
        };
        let returned = execute(&self.host, &self.pre, request, limits, access).await?;
        let secrets = &access.secrets;
        let Returned {
            response,
            logs,
            network,
        } = returned;
        let Response::Run(result) = response else {
            return Err(host_failure("unexpected response", logs));
        };
        match result
            .map_err(|e| guest_error(e, limits))
            .and_then(|out| check_target_output(out, limits))
        {
            Ok(mut out) => {
                secrets.redact_json(&mut out.output);
                if let Some(id) = out.trace_id.as_mut() {
                    secrets.redact_in_place(id);
                }
                if let Some(metadata) = out.metadata.as_mut() {
                    secrets.redact_json(metadata);
                }
                Ok(TargetOutcome {
                    output: out.output,
                    trace_id: out.trace_id,
                    metadata: out.metadata,
                    logs,
                    network,
                })
            }
            Err(error) => Err(failure(error, logs, network, secrets)),
        }
    }

    /// Scores `output` for one item in a fresh sandbox (`output` is `None`
    /// when the target failed), with no network: see
    /// [`Plugin::score_with_network`].
    pub async fn score(
        &self,
        item: &PluginItem,
        output: Option<&Value>,
        config: Option<&Value>,
        limits: &Limits,
    ) -> Result<ScoreOutcome, CallFailure> {
        self.score_with_network(item, output, config, limits, &NetworkAccess::none())
            .await
    }

    /// Scores `output` for one item in a fresh sandbox whose outbound HTTP
    /// is checked against `access` (a model-graded scorer calls a model).
    ///
    /// Cancel-safe, like [`Plugin::run_target_with_network`].
    pub async fn score_with_network(
        &self,
        item: &PluginItem,
        output: Option<&Value>,
        config: Option<&Value>,
        limits: &Limits,
        access: &NetworkAccess,
    ) -> Result<ScoreOutcome, CallFailure> {
        if let Some(failure) = self.wrong_kind(PluginKind::Scorer) {
            return Err(failure);
        }
        let request = Request::Score {
            item: guest_item(item),
            output: output.map(Value::to_string),
            config: config.map(Value::to_string),
        };
        let returned = execute(&self.host, &self.pre, request, limits, access).await?;
        let secrets = &access.secrets;
        let Returned {
            response,
            logs,
            network,
        } = returned;
        let Response::Score(result) = response else {
            return Err(host_failure("unexpected response", logs));
        };
        match result
            .map_err(|e| guest_error(e, limits))
            .and_then(|score| check_score(score, limits))
        {
            Ok((value, mut reason, mut metadata)) => {
                if let Some(reason) = reason.as_mut() {
                    secrets.redact_in_place(reason);
                }
                if let Some(metadata) = metadata.as_mut() {
                    secrets.redact_json(metadata);
                }
                Ok(ScoreOutcome {
                    value,
                    reason,
                    metadata,
                    logs,
                    network,
                })
            }
            Err(error) => Err(failure(error, logs, network, secrets)),
        }
    }

    /// Calls `info` again in a fresh sandbox (load already did this once).
    pub async fn call_info(&self, limits: &Limits) -> Result<PluginInfo, CallFailure> {
        let returned = execute(
            &self.host,
            &self.pre,
            Request::Info,
            limits,
            &NetworkAccess::none(),
        )
        .await?;
        match returned.response {
            Response::Info(info) => check_info(info)
                .map_err(|e| CallFailure::new(CallError::Failed(e.to_string()), returned.logs)),
            _ => Err(host_failure("unexpected response", returned.logs)),
        }
    }

    /// A failure when this plugin is not of `kind`.
    fn wrong_kind(&self, kind: PluginKind) -> Option<CallFailure> {
        if self.kind == kind {
            return None;
        }
        Some(CallFailure::new(
            CallError::Host(format!(
                "plugin `{}` is a {}, not a {kind}",
                self.info.id, self.kind
            )),
            CapturedLogs::default(),
        ))
    }
}

fn guest_item(item: &PluginItem) -> GuestItem {
    GuestItem {
        id: item.id.clone(),
        input: item.input.to_string(),
        ground_truth: item.ground_truth.as_ref().map(Value::to_string),
        metadata: item.metadata.as_ref().map(Value::to_string),
    }
}

fn host_failure(message: &str, logs: CapturedLogs) -> CallFailure {
    CallFailure::new(CallError::Host(message.into()), logs)
}
