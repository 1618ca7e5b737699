//! [`Plugin`]: a loaded, pre-instantiated component, and its calls.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasmtime::Store;
use wasmtime::component::Component;

use crate::CONTRACT_VERSION;
use crate::bindings::scorer::exports::assay::plugin::scorer::ScoreResult;
use crate::bindings::scorer::{ScorerPlugin, ScorerPluginPre};
use crate::bindings::target::exports::assay::plugin::target::TargetOutput;
use crate::bindings::target::{TargetPlugin, TargetPluginPre};
use crate::bindings::{Item, PluginError, WitPluginInfo};
use crate::config::Limits;
use crate::error::{CallError, CallFailure, LoadError};
use crate::host::{PluginHost, export_names, import_names};
use crate::logs::CapturedLogs;
use crate::sandbox::{CallState, classify, new_store};

/// Which plugin interface a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Exports `assay:plugin/scorer`: grades outputs.
    Scorer,
    /// Exports `assay:plugin/target`: turns items into outputs.
    Target,
}

impl PluginKind {
    /// `scorer` or `target`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Scorer => "scorer",
            PluginKind::Target => "target",
        }
    }

    /// The WIT interface name without version, e.g. `assay:plugin/scorer`.
    pub fn interface(self) -> &'static str {
        match self {
            PluginKind::Scorer => "assay:plugin/scorer",
            PluginKind::Target => "assay:plugin/target",
        }
    }

    /// The WIT world name, e.g. `scorer-plugin`.
    pub fn world(self) -> &'static str {
        match self {
            PluginKind::Scorer => "scorer-plugin",
            PluginKind::Target => "target-plugin",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plugin says about itself (its `info` export).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Stable id, lowercase `[a-z0-9-]`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// One-paragraph description.
    pub description: String,
}

/// One dataset item as handed to a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginItem {
    /// The item's id.
    pub id: String,
    /// The item's input.
    pub input: Value,
    /// The expected output, if any.
    pub ground_truth: Option<Value>,
    /// Free-form metadata / context.
    pub metadata: Option<Value>,
}

/// A target's successful result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetOutcome {
    /// The output JSON.
    pub output: Value,
    /// The plugin's trace id, if it gave one.
    pub trace_id: Option<String>,
    /// What the guest printed.
    pub logs: CapturedLogs,
}

/// A scorer's successful result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreOutcome {
    /// The score, in `[0, 1]`.
    pub value: f64,
    /// Why this score.
    pub reason: Option<String>,
    /// Extra structured detail.
    pub metadata: Option<Value>,
    /// What the guest printed.
    pub logs: CapturedLogs,
}

/// Typed pre-instantiated component of either world.
enum Pre {
    Scorer(ScorerPluginPre<CallState>),
    Target(TargetPluginPre<CallState>),
}

/// What to call in a fresh instance.
enum Request {
    Info,
    Run {
        item: Item,
        config: Option<String>,
    },
    Score {
        item: Item,
        output: Option<String>,
        config: Option<String>,
    },
}

/// What the call returned.
enum Response {
    Info(WitPluginInfo),
    Run(Result<TargetOutput, PluginError>),
    Score(Result<ScoreResult, PluginError>),
}

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
    /// Validates the component's world and version, pre-instantiates it and
    /// calls `info` once.
    pub(crate) fn new(
        host: PluginHost,
        component: Component,
        digest: String,
        size_bytes: usize,
        from_cache: bool,
    ) -> Result<Self, LoadError> {
        let engine = host.engine();
        let exports = export_names(engine, &component);
        let imports = import_names(engine, &component);
        let (kind, contract_version) = detect_world(&exports)?;
        let instance_pre = host
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let wrong_shape = |e: wasmtime::Error| LoadError::WrongWorld {
            missing: format!(
                "`{}@{contract_version}` with the functions of world `{}` ({e:#})",
                kind.interface(),
                kind.world()
            ),
            found: exports.clone(),
        };
        let pre = match kind {
            PluginKind::Scorer => {
                Pre::Scorer(ScorerPluginPre::new(instance_pre).map_err(wrong_shape)?)
            }
            PluginKind::Target => {
                Pre::Target(TargetPluginPre::new(instance_pre).map_err(wrong_shape)?)
            }
        };
        let info = call_info_blocking(&host, &pre)?;
        Ok(Self {
            host,
            pre,
            kind,
            info,
            digest,
            contract_version,
            size_bytes,
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

    /// Runs a target plugin on one item in a fresh sandbox.
    ///
    /// Cancel-safe: dropping the future stops the guest at its next epoch
    /// tick and frees its instance; nothing outlives the call.
    pub async fn run_target(
        &self,
        item: &PluginItem,
        config: Option<&Value>,
        limits: &Limits,
    ) -> Result<TargetOutcome, CallFailure> {
        self.expect_kind(PluginKind::Target)?;
        let request = Request::Run {
            item: to_wit_item(item),
            config: config.map(Value::to_string),
        };
        let (response, logs) = execute(&self.host, &self.pre, request, limits).await?;
        let Response::Run(result) = response else {
            return Err(host_failure("unexpected response", logs));
        };
        match result {
            Err(e) => Err(CallFailure {
                error: plugin_error(e),
                logs,
            }),
            Ok(out) => match check_target_output(out, limits) {
                Ok((output, trace_id)) => Ok(TargetOutcome {
                    output,
                    trace_id,
                    logs,
                }),
                Err(error) => Err(CallFailure { error, logs }),
            },
        }
    }

    /// Scores `output` for one item in a fresh sandbox (`output` is `None`
    /// when the target failed).
    ///
    /// Cancel-safe, like [`Plugin::run_target`].
    pub async fn score(
        &self,
        item: &PluginItem,
        output: Option<&Value>,
        config: Option<&Value>,
        limits: &Limits,
    ) -> Result<ScoreOutcome, CallFailure> {
        self.expect_kind(PluginKind::Scorer)?;
        let request = Request::Score {
            item: to_wit_item(item),
            output: output.map(Value::to_string),
            config: config.map(Value::to_string),
        };
        let (response, logs) = execute(&self.host, &self.pre, request, limits).await?;
        let Response::Score(result) = response else {
            return Err(host_failure("unexpected response", logs));
        };
        match result {
            Err(e) => Err(CallFailure {
                error: plugin_error(e),
                logs,
            }),
            Ok(score) => match check_score(score, limits) {
                Ok((value, reason, metadata)) => Ok(ScoreOutcome {
                    value,
                    reason,
                    metadata,
                    logs,
                }),
                Err(error) => Err(CallFailure { error, logs }),
            },
        }
    }

    /// Calls `info` again in a fresh sandbox (load already did this once).
    pub async fn call_info(&self, limits: &Limits) -> Result<PluginInfo, CallFailure> {
        let (response, logs) = execute(&self.host, &self.pre, Request::Info, limits).await?;
        match response {
            Response::Info(info) => Ok(from_wit_info(info)),
            _ => Err(host_failure("unexpected response", logs)),
        }
    }

    fn expect_kind(&self, kind: PluginKind) -> Result<(), CallFailure> {
        if self.kind == kind {
            return Ok(());
        }
        Err(CallFailure {
            error: CallError::Host(format!(
                "plugin `{}` is a {}, not a {kind}",
                self.info.id, self.kind
            )),
            logs: CapturedLogs::default(),
        })
    }
}

/// Finds the plugin interface among the exports and checks its version.
fn detect_world(exports: &[String]) -> Result<(PluginKind, String), LoadError> {
    let mut other_version = None;
    for kind in [PluginKind::Scorer, PluginKind::Target] {
        for name in exports {
            let Some(rest) = name.strip_prefix(kind.interface()) else {
                continue;
            };
            let version = match rest.strip_prefix('@') {
                Some(v) => v,
                None if rest.is_empty() => "unversioned",
                None => continue,
            };
            if contract_compatible(version, CONTRACT_VERSION) {
                return Ok((kind, version.to_string()));
            }
            other_version.get_or_insert_with(|| version.to_string());
        }
    }
    if let Some(plugin) = other_version {
        return Err(LoadError::IncompatibleContract {
            plugin,
            host: CONTRACT_VERSION.to_string(),
        });
    }
    Err(LoadError::WrongWorld {
        missing: format!(
            "`{}@{CONTRACT_VERSION}` or `{}@{CONTRACT_VERSION}`",
            PluginKind::Scorer.interface(),
            PluginKind::Target.interface()
        ),
        found: exports.to_vec(),
    })
}

/// Semver compatibility as the component model links it: same major, and
/// for `0.x` the same minor.
fn contract_compatible(plugin: &str, host: &str) -> bool {
    fn parts(v: &str) -> Option<(u64, u64)> {
        let mut it = v.split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        let _patch: u64 = it.next()?.split(['-', '+']).next()?.parse().ok()?;
        Some((major, minor))
    }
    match (parts(plugin), parts(host)) {
        (Some((pm, pn)), Some((hm, hn))) => pm == hm && (pm != 0 || pn == hn),
        _ => false,
    }
}

/// Runs one request in a fresh store, under `limits`.
async fn execute(
    host: &PluginHost,
    pre: &Pre,
    request: Request,
    limits: &Limits,
) -> Result<(Response, CapturedLogs), CallFailure> {
    let _slot = host.inner.slots.acquire().await.map_err(|_| CallFailure {
        error: CallError::Host("plugin host is shutting down".into()),
        logs: CapturedLogs::default(),
    })?;
    let mut store = new_store(
        &host.inner.engine,
        limits,
        host.inner.config.max_memory_bytes,
    );
    let outcome = tokio::time::timeout(limits.timeout, invoke(pre, &mut store, &request)).await;
    let logs = store.data().logs();
    match outcome {
        Ok(Ok(response)) => Ok((response, logs)),
        Ok(Err(err)) => {
            let error = classify(&err, store.data(), &logs, limits.timeout);
            tracing::debug!(error = %error, detail = ?err, "plugin call failed");
            Err(CallFailure { error, logs })
        }
        Err(_elapsed) => Err(CallFailure {
            error: CallError::Timeout {
                after: limits.timeout,
            },
            logs,
        }),
    }
}

/// Instantiates and calls; the store is discarded afterwards.
async fn invoke(
    pre: &Pre,
    store: &mut Store<CallState>,
    request: &Request,
) -> wasmtime::Result<Response> {
    match pre {
        Pre::Scorer(pre) => {
            let instance: ScorerPlugin = pre.instantiate_async(&mut *store).await?;
            let guest = instance.assay_plugin_scorer();
            match request {
                Request::Info => Ok(Response::Info(guest.call_info(&mut *store).await?)),
                Request::Score {
                    item,
                    output,
                    config,
                } => Ok(Response::Score(
                    guest
                        .call_score(&mut *store, item, output.as_ref(), config.as_ref())
                        .await?,
                )),
                Request::Run { .. } => wasmtime::bail!("a scorer cannot run as a target"),
            }
        }
        Pre::Target(pre) => {
            let instance: TargetPlugin = pre.instantiate_async(&mut *store).await?;
            let guest = instance.assay_plugin_target();
            match request {
                Request::Info => Ok(Response::Info(guest.call_info(&mut *store).await?)),
                Request::Run { item, config } => Ok(Response::Run(
                    guest.call_run(&mut *store, item, config.as_ref()).await?,
                )),
                Request::Score { .. } => wasmtime::bail!("a target cannot score"),
            }
        }
    }
}

/// Limits of the `info` call made when loading.
fn info_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(5),
        ..Limits::default()
    }
}

/// Calls `info` from synchronous code: on a short-lived thread with its own
/// single-threaded runtime, so it works whether or not the caller is inside
/// a tokio runtime.
fn call_info_blocking(host: &PluginHost, pre: &Pre) -> Result<PluginInfo, LoadError> {
    let limits = info_limits();
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| LoadError::Engine(format!("cannot start a runtime: {e}")))?;
                runtime
                    .block_on(execute(host, pre, Request::Info, &limits))
                    .map_err(|failure| {
                        LoadError::Instantiate(format!("its `info` call failed: {failure}"))
                    })
            })
            .join()
    });
    let (response, _logs) = match result {
        Ok(r) => r?,
        Err(_) => return Err(LoadError::Engine("the `info` call thread panicked".into())),
    };
    let Response::Info(info) = response else {
        return Err(LoadError::Engine("unexpected response to `info`".into()));
    };
    let info = from_wit_info(info);
    validate_id(&info.id)?;
    Ok(info)
}

fn validate_id(id: &str) -> Result<(), LoadError> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(LoadError::InvalidInfo(format!(
            "plugin id `{id}` is not valid: use 1-64 lowercase letters, digits and `-`"
        )))
    }
}

fn from_wit_info(info: WitPluginInfo) -> PluginInfo {
    PluginInfo {
        id: info.id,
        name: info.name,
        description: info.description,
    }
}

fn to_wit_item(item: &PluginItem) -> Item {
    Item {
        id: item.id.clone(),
        input: item.input.to_string(),
        ground_truth: item.ground_truth.as_ref().map(Value::to_string),
        metadata: item.metadata.as_ref().map(Value::to_string),
    }
}

fn plugin_error(e: PluginError) -> CallError {
    match e {
        PluginError::InvalidInput(m) => CallError::InvalidInput(m),
        PluginError::Transient(m) => CallError::Transient(m),
        PluginError::Failed(m) => CallError::Failed(m),
    }
}

fn host_failure(message: &str, logs: CapturedLogs) -> CallFailure {
    CallFailure {
        error: CallError::Host(message.into()),
        logs,
    }
}

fn check_target_output(
    out: TargetOutput,
    limits: &Limits,
) -> Result<(Value, Option<String>), CallError> {
    let size = out.output.len() + out.trace_id.as_ref().map_or(0, String::len);
    if size > limits.max_output_bytes {
        return Err(CallError::OutputTooLarge {
            size,
            limit: limits.max_output_bytes,
        });
    }
    let output = parse_json(&out.output, "output")?;
    Ok((output, out.trace_id))
}

fn check_score(
    score: ScoreResult,
    limits: &Limits,
) -> Result<(f64, Option<String>, Option<Value>), CallError> {
    if !(0.0..=1.0).contains(&score.value) {
        return Err(CallError::ScoreOutOfRange { value: score.value });
    }
    let size = score.reason.as_ref().map_or(0, String::len)
        + score.metadata.as_ref().map_or(0, String::len);
    if size > limits.max_output_bytes {
        return Err(CallError::OutputTooLarge {
            size,
            limit: limits.max_output_bytes,
        });
    }
    let metadata = score
        .metadata
        .as_deref()
        .map(|m| parse_json(m, "metadata"))
        .transpose()?;
    Ok((score.value, score.reason, metadata))
}

fn parse_json(text: &str, what: &'static str) -> Result<Value, CallError> {
    serde_json::from_str(text).map_err(|e| CallError::InvalidJson {
        what,
        error: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_versions() {
        assert!(contract_compatible("0.1.0", "0.1.0"));
        assert!(contract_compatible("0.1.3", "0.1.0"));
        assert!(!contract_compatible("0.0.1", "0.1.0"));
        assert!(!contract_compatible("0.2.0", "0.1.0"));
        assert!(contract_compatible("1.4.0", "1.0.0"));
        assert!(!contract_compatible("2.0.0", "1.0.0"));
        assert!(!contract_compatible("garbage", "0.1.0"));
    }

    #[test]
    fn world_detection() {
        let scorer = vec!["assay:plugin/scorer@0.1.0".to_string()];
        assert_eq!(
            detect_world(&scorer).unwrap(),
            (PluginKind::Scorer, "0.1.0".into())
        );
        let old = vec!["assay:plugin/target@0.0.1".to_string()];
        assert!(matches!(
            detect_world(&old),
            Err(LoadError::IncompatibleContract { plugin, .. }) if plugin == "0.0.1"
        ));
        let other = vec!["wasi:cli/run@0.2.0".to_string()];
        let err = detect_world(&other).unwrap_err();
        assert_eq!(
            err.to_string(),
            "component does not export `assay:plugin/scorer@0.1.0` or `assay:plugin/target@0.1.0`; it exports: [wasi:cli/run@0.2.0]"
        );
    }

    #[test]
    fn score_checks() {
        let limits = Limits::scorer_default();
        let ok = ScoreResult {
            value: 0.5,
            reason: Some("half".into()),
            metadata: Some("{\"a\":1}".into()),
        };
        assert!(check_score(ok, &limits).is_ok());
        for bad in [f64::NAN, -0.1, 1.5, f64::INFINITY] {
            let r = ScoreResult {
                value: bad,
                reason: None,
                metadata: None,
            };
            assert_eq!(
                check_score(r, &limits).unwrap_err().kind(),
                "score-out-of-range"
            );
        }
        let invalid = ScoreResult {
            value: 1.0,
            reason: None,
            metadata: Some("{nope".into()),
        };
        assert_eq!(
            check_score(invalid, &limits).unwrap_err().kind(),
            "invalid-json"
        );
    }

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("exact-match").is_ok());
        assert!(validate_id("Exact Match").is_err());
        assert!(validate_id("").is_err());
    }
}
