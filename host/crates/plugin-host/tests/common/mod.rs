//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use assay_plugin_host::{HostConfig, Limits, Plugin, PluginHost, PluginItem};
use serde_json::{Value, json};

/// One host for the whole test binary (as in production: one per process).
pub fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| {
        PluginHost::new(HostConfig {
            max_instances: 64,
            ..HostConfig::default()
        })
        .expect("plugin host")
    })
}

/// The fixture or plugin `name`, loaded once per test binary.
pub fn plugin(name: &str) -> Arc<Plugin> {
    static LOADED: OnceLock<Mutex<HashMap<String, Arc<Plugin>>>> = OnceLock::new();
    let loaded = LOADED.get_or_init(Default::default);
    if let Some(p) = loaded.lock().unwrap().get(name) {
        return p.clone();
    }
    let path = assay_test_support::plugin_wasm(name);
    let plugin = host()
        .load_file(&path)
        .unwrap_or_else(|e| panic!("load {name}: {e}"));
    loaded
        .lock()
        .unwrap()
        .insert(name.to_string(), plugin.clone());
    plugin
}

pub fn item(input: Value, ground_truth: Option<Value>) -> PluginItem {
    PluginItem {
        id: "item-1".into(),
        input,
        ground_truth,
        metadata: None,
    }
}

/// Short limits so hostile calls end quickly.
pub fn quick_limits() -> Limits {
    Limits::default().with_timeout(Duration::from_secs(2))
}

/// Proves the host still works: exact-match scores a matching pair 1.
pub async fn good_call_works() {
    let scorer = plugin("exact-match");
    let it = item(json!("q"), Some(json!("yes")));
    let out = scorer
        .score(&it, Some(&json!("yes")), None, &Limits::scorer_default())
        .await
        .expect("good plugin still works");
    assert_eq!(out.value, 1.0);
}
