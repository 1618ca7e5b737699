//! Every supported contract version loads and runs: a scorer built against
//! contract 0.1 (`tests/fixtures/contract-v0-1`) still scores, and what
//! contract 0.2 added (`needs`, target `metadata`) reaches the caller
//! (`tests/fixtures/metered-target`, built with the SDK).

mod common;

use assay_plugin_host::{CallError, Limits, PluginKind};
use common::{item, plugin};
use serde_json::json;

#[tokio::test]
async fn a_contract_0_1_scorer_still_loads_and_scores() {
    let p = plugin("contract-v0-1");
    assert_eq!(p.kind(), PluginKind::Scorer);
    assert_eq!(p.contract_version(), "0.1.0");
    assert!(
        p.exports()
            .contains(&"assay:plugin/scorer@0.1.0".to_string())
    );
    assert_eq!(p.info().id, "contract-v0-1");
    assert!(p.info().needs.is_empty(), "a 0.1 plugin needs nothing");
    let report = assay_plugin_host::PluginReport::from_plugin(&p);
    assert!(report.to_string().contains("needs:       nothing"));

    let limits = Limits::scorer_default();
    let it = item(json!("q"), Some(json!({"a": 1})));
    let equal = p
        .score(&it, Some(&json!({"a": 1})), None, &limits)
        .await
        .unwrap();
    assert_eq!(equal.value, 1.0);
    assert_eq!(equal.reason.as_deref(), Some("equal"));
    assert_eq!(equal.metadata, Some(json!({"contract": "0.1"})));
    let different = p
        .score(&it, Some(&json!({"a": 2})), None, &limits)
        .await
        .unwrap();
    assert_eq!(different.value, 0.0);

    let no_truth = item(json!("q"), None);
    let err = p
        .score(&no_truth, Some(&json!(1)), None, &limits)
        .await
        .unwrap_err();
    assert_eq!(
        err.error,
        CallError::InvalidInput("item item-1 has no ground truth".into())
    );

    let again = p.call_info(&limits).await.unwrap();
    assert_eq!(&again, p.info());
}

#[tokio::test]
async fn a_contract_0_2_target_declares_needs_and_reports_metadata() {
    let p = plugin("metered-target");
    assert_eq!(p.kind(), PluginKind::Target);
    assert_eq!(p.contract_version(), "0.2.0");
    assert_eq!(p.contract_version(), assay_plugin_host::CONTRACT_VERSION);

    let needs = &p.info().needs;
    let hosts: Vec<String> = needs.hosts.iter().map(ToString::to_string).collect();
    assert_eq!(hosts, ["api.example.com", "*.example.org:8443"]);
    assert_eq!(needs.secrets, ["EXAMPLE_API_KEY"]);
    let info_json = serde_json::to_value(p.info()).unwrap();
    assert_eq!(
        info_json["needs"],
        json!({"hosts": ["api.example.com", "*.example.org:8443"], "secrets": ["EXAMPLE_API_KEY"]})
    );

    let report = assay_plugin_host::PluginReport::from_plugin(&p);
    let text = report.to_string();
    assert!(
        text.contains("needs hosts:   api.example.com, *.example.org:8443")
            && text.contains("needs secrets: EXAMPLE_API_KEY"),
        "{text}"
    );
    assert_eq!(
        serde_json::to_value(&report).unwrap()["needs"]["secrets"],
        json!(["EXAMPLE_API_KEY"])
    );

    let out = p
        .run_target(
            &item(json!("one two three"), None),
            None,
            &Limits::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.output, json!("one two three"));
    assert_eq!(out.trace_id.as_deref(), Some("metered-1"));
    assert_eq!(
        out.metadata,
        Some(json!({
            "usage": {"promptTokens": 3, "completionTokens": 3, "totalTokens": 6},
            "model": "fixture-model",
        }))
    );
}

#[tokio::test]
async fn target_metadata_counts_against_the_output_cap() {
    let p = plugin("metered-target");
    let limits = Limits {
        max_output_bytes: 1024,
        ..Limits::default()
    };
    let it = item(json!("x"), None);
    let small = json!({"metadata": {"model": "m"}});
    let out = p.run_target(&it, Some(&small), &limits).await.unwrap();
    assert_eq!(out.metadata, Some(json!({"model": "m"})));

    let big = json!({"metadata": {"pad": "x".repeat(2000)}});
    let err = p.run_target(&it, Some(&big), &limits).await.unwrap_err();
    assert!(
        matches!(err.error, CallError::OutputTooLarge { limit: 1024, .. }),
        "{:?}",
        err.error
    );
}
