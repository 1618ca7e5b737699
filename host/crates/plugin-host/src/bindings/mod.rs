//! Host bindings, one module per contract version, and the
//! version-independent requests and replies they translate.
//!
//! A version's module (`v0_1`, ...) generates its bindings from its WIT
//! folder, pre-instantiates components of either world, and converts the
//! [`Request`] / [`Response`] types below to and from its generated types.
//! Everything above this module (calls, checks, [`Plugin`](crate::Plugin))
//! is the same for every version.

pub(crate) mod v0_1;
pub(crate) mod v0_2;

use wasmtime::Store;

use crate::sandbox::CallState;

/// A component pre-instantiated with the bindings of its contract version.
pub(crate) enum Pre {
    /// Contract 0.1.
    V0_1(v0_1::Pre),
    /// Contract 0.2: `needs` in `plugin-info`, `metadata` in
    /// `target-output`.
    V0_2(v0_2::Pre),
}

impl Pre {
    /// Instantiates the component in `store` and makes one call.
    pub(crate) async fn invoke(
        &self,
        store: &mut Store<CallState>,
        request: Request,
    ) -> wasmtime::Result<Response> {
        match self {
            Pre::V0_1(pre) => pre.invoke(store, request).await,
            Pre::V0_2(pre) => pre.invoke(store, request).await,
        }
    }
}

/// One dataset item as it crosses the boundary: JSON as text.
pub(crate) struct GuestItem {
    pub(crate) id: String,
    pub(crate) input: String,
    pub(crate) ground_truth: Option<String>,
    pub(crate) metadata: Option<String>,
}

/// What to call in a fresh instance.
pub(crate) enum Request {
    /// `info()`.
    Info,
    /// A target's `run(item, config)`.
    Run {
        item: GuestItem,
        config: Option<String>,
    },
    /// A scorer's `score(item, output, config)`.
    Score {
        item: GuestItem,
        output: Option<String>,
        config: Option<String>,
    },
}

/// What the call returned, before the host checks it.
pub(crate) enum Response {
    Info(InfoReply),
    Run(Result<TargetReply, GuestError>),
    Score(Result<ScoreReply, GuestError>),
}

/// A plugin's `plugin-info`, unchecked (the host checks the id, the sizes
/// and parses `needs` in `checks::check_info`).
pub(crate) struct InfoReply {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    /// Empty before contract 0.2.
    pub(crate) needs_hosts: Vec<String>,
    /// Empty before contract 0.2.
    pub(crate) needs_secrets: Vec<String>,
}

/// A target's `target-output`.
pub(crate) struct TargetReply {
    pub(crate) output: String,
    pub(crate) trace_id: Option<String>,
    /// JSON text; always `None` before contract 0.2.
    pub(crate) metadata: Option<String>,
}

/// A scorer's `score-result`.
pub(crate) struct ScoreReply {
    pub(crate) value: f64,
    pub(crate) reason: Option<String>,
    pub(crate) metadata: Option<String>,
}

/// A `plugin-error` the guest returned.
pub(crate) enum GuestError {
    InvalidInput(String),
    Transient(String),
    Failed(String),
}
