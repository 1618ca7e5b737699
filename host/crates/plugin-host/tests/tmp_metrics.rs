mod common;
use common::*;
use serde_json::json;
#[tokio::test(flavor = "multi_thread")]
async fn metrics() {
    for name in ["hostile-target"] {
        let p = plugin(name);
        let h = tokio::spawn(async move { p.run_target(&item(json!("sleep"), None), Some(&json!({"mode":"sleep","ms":500})), &assay_plugin_host::Limits::default()).await.unwrap(); });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        eprintln!("METRICS {name}: {}", host().tmp_metrics());
        h.await.unwrap();
        eprintln!("METRICS after: {}", host().tmp_metrics());
    }
}
