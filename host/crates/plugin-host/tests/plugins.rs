//! Loading and calling the shipped plugins; the sandbox's grants; logs;
//! concurrency.

mod common;

use assay_plugin_host::{CallError, Limits, PluginKind, PluginReport};
use common::{host, item, plugin, quick_limits};
use serde_json::{Value, json};

/// Every shipped plugin and its kind. Plugins not built yet are skipped
/// with a note, so this test grows with the plugin set.
const SHIPPED: &[(&str, PluginKind)] = &[
    ("echo", PluginKind::Target),
    ("template", PluginKind::Target),
    ("exact-match", PluginKind::Scorer),
    ("contains", PluginKind::Scorer),
    ("regex", PluginKind::Scorer),
    ("levenshtein", PluginKind::Scorer),
    ("content-similarity", PluginKind::Scorer),
    ("keyword-coverage", PluginKind::Scorer),
    ("textual-difference", PluginKind::Scorer),
    ("json-valid", PluginKind::Scorer),
    ("numeric-diff", PluginKind::Scorer),
];

#[tokio::test]
async fn every_shipped_plugin_loads_and_answers_one_call() {
    let crates = assay_test_support::plugin_crates();
    let mut checked = 0;
    for (name, kind) in SHIPPED {
        if !crates.iter().any(|c| c == name) {
            eprintln!("plugin `{name}` is not in the workspace yet: skipped");
            continue;
        }
        let p = plugin(name);
        assert_eq!(p.kind(), *kind, "{name}");
        assert_eq!(p.info().id, *name, "{name}");
        assert!(!p.info().name.is_empty(), "{name}");
        assert!(!p.info().description.is_empty(), "{name}");
        assert_eq!(p.contract_version(), assay_plugin_host::CONTRACT_VERSION);
        assert!(p.digest().starts_with("sha256:") && p.digest().len() == 71);
        let it = item(json!("hello"), Some(json!("hello")));
        // Any answer from the plugin itself is fine here (some need a
        // config); what must not happen is a sandbox-level failure.
        let answer = match kind {
            PluginKind::Target => p
                .run_target(&it, None, &Limits::default())
                .await
                .map(|_| ()),
            PluginKind::Scorer => p
                .score(&it, Some(&json!("hello")), None, &Limits::scorer_default())
                .await
                .map(|s| assert!((0.0..=1.0).contains(&s.value), "{name}")),
        };
        if let Err(f) = answer {
            assert!(
                matches!(f.error, CallError::InvalidInput(_) | CallError::Failed(_)),
                "{name}: {}",
                f.error
            );
        }
        checked += 1;
    }
    assert!(checked >= 2, "at least echo and exact-match must exist");
}

#[tokio::test]
async fn echo_returns_the_input() {
    let echo = plugin("echo");
    let input = json!({"question": "2+2?", "list": [1, 2.5, null]});
    let out = echo
        .run_target(&item(input.clone(), None), None, &Limits::default())
        .await
        .unwrap();
    assert_eq!(out.output, input);
    assert!(out.logs.is_empty());
}

#[tokio::test]
async fn exact_match_scores_one_and_zero() {
    let scorer = plugin("exact-match");
    let it = item(json!("q"), Some(json!("Paris")));
    let limits = Limits::scorer_default();
    let hit = scorer
        .score(&it, Some(&json!("Paris")), None, &limits)
        .await
        .unwrap();
    assert_eq!(hit.value, 1.0);
    let miss = scorer
        .score(&it, Some(&json!("Lyon")), None, &limits)
        .await
        .unwrap();
    assert_eq!(miss.value, 0.0);
    assert!(miss.reason.is_some());
    let ci = scorer
        .score(
            &it,
            Some(&json!("paris")),
            Some(&json!({"ignoreCase": true})),
            &limits,
        )
        .await
        .unwrap();
    assert_eq!(ci.value, 1.0, "config reaches the plugin");
}

#[tokio::test]
async fn calling_the_wrong_kind_is_a_host_error() {
    let scorer = plugin("exact-match");
    let err = scorer
        .run_target(&item(json!(1), None), None, &Limits::default())
        .await
        .unwrap_err();
    assert_eq!(err.error.kind(), "host");
    assert!(
        err.to_string().contains("is a scorer, not a target"),
        "{err}"
    );
}

#[tokio::test]
async fn plugin_errors_keep_their_kind() {
    let target = plugin("hostile-target");
    for (mode, kind, transient) in [
        ("transient", "transient", true),
        ("fail", "failed", false),
        ("invalid-input", "invalid-input", false),
    ] {
        let err = target
            .run_target(&item(json!(mode), None), None, &quick_limits())
            .await
            .unwrap_err();
        assert_eq!(err.error.kind(), kind, "{mode}: {}", err.error);
        assert_eq!(err.error.is_transient(), transient, "{mode}");
    }
}

#[tokio::test]
async fn reading_a_file_fails_inside_the_guest() {
    let err = plugin("hostile-target")
        .run_target(&item(json!("read-file"), None), None, &quick_limits())
        .await
        .unwrap_err();
    let CallError::Failed(message) = &err.error else {
        panic!("expected the guest's own failure, got {:?}", err.error);
    };
    assert!(message.starts_with("read-file: "), "{message}");
    assert!(
        !message.contains("root:"),
        "no /etc/passwd contents: {message}"
    );
}

#[tokio::test]
async fn guest_sees_no_env_and_no_args() {
    let out = plugin("hostile-target")
        .run_target(&item(json!("read-env"), None), None, &quick_limits())
        .await
        .unwrap();
    assert_eq!(out.output, json!({"env": {}, "args": []}));
}

#[tokio::test]
async fn network_is_denied() {
    // A listening socket on the host proves the denial is the sandbox's,
    // not a closed port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let err = plugin("hostile-target")
        .run_target(
            &item(json!("net"), None),
            Some(&json!({"mode": "net", "port": port})),
            &quick_limits(),
        )
        .await
        .unwrap_err();
    let CallError::Failed(message) = &err.error else {
        panic!("expected the guest's own failure, got {:?}", err.error);
    };
    assert!(message.starts_with("net: "), "{message}");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "nothing connected");
}

#[tokio::test]
async fn stderr_is_captured() {
    let input = json!({"mode": "stderr", "x": 1});
    let out = plugin("hostile-target")
        .run_target(&item(input.clone(), None), None, &quick_limits())
        .await
        .unwrap();
    assert_eq!(out.output, input);
    assert_eq!(out.logs.stderr, "hostile stderr line\n");
    assert_eq!(out.logs.stdout, "");
    assert!(!out.logs.truncated);
}

#[tokio::test]
async fn stdout_flood_is_capped_and_the_call_still_succeeds() {
    let input = json!({"mode": "flood-stdout"});
    let limits = Limits {
        max_log_bytes: 4096,
        ..quick_limits()
    };
    let out = plugin("hostile-target")
        .run_target(&item(input.clone(), None), None, &limits)
        .await
        .unwrap();
    assert_eq!(out.output, input);
    assert_eq!(out.logs.stdout.len(), 4096);
    assert!(out.logs.stdout.bytes().all(|b| b == b'x'));
    assert!(out.logs.truncated);
}

#[tokio::test]
async fn each_call_gets_a_fresh_instance() {
    // Both calls see the same pristine guest: the second cannot observe
    // anything the first left behind (same output, same empty logs).
    let target = plugin("hostile-target");
    let first = target
        .run_target(&item(json!("read-env"), None), None, &quick_limits())
        .await
        .unwrap();
    let stderr = target
        .run_target(&item(json!("stderr"), None), None, &quick_limits())
        .await
        .unwrap();
    assert!(!stderr.logs.stderr.is_empty());
    let again = target
        .run_target(&item(json!("read-env"), None), None, &quick_limits())
        .await
        .unwrap();
    assert_eq!(first.output, again.output);
    assert!(again.logs.is_empty(), "no log of an earlier call leaks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_calls_all_succeed() {
    let echo = plugin("echo");
    let scorer = plugin("exact-match");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (echo, scorer) = (echo.clone(), scorer.clone());
        tasks.spawn(async move {
            let it = item(json!({"n": i}), Some(json!({"n": i})));
            let out = echo.run_target(&it, None, &Limits::default()).await?;
            let score = scorer
                .score(&it, Some(&out.output), None, &Limits::scorer_default())
                .await?;
            Ok::<_, assay_plugin_host::CallFailure>((i, out.output, score.value))
        });
    }
    let mut seen = 0;
    while let Some(joined) = tasks.join_next().await {
        let (i, output, value) = joined.unwrap().unwrap();
        assert_eq!(output, json!({"n": i}));
        assert_eq!(value, 1.0);
        seen += 1;
    }
    assert_eq!(seen, 50);
}

#[test]
fn inspect_reports_kind_id_digest_and_imports() {
    let path = assay_test_support::plugin_wasm("exact-match");
    let report: PluginReport = assay_plugin_host::inspect(host(), &path).unwrap();
    assert_eq!(report.kind, PluginKind::Scorer);
    assert_eq!(report.id, "exact-match");
    assert_eq!(report.world, "assay:plugin/scorer-plugin@0.2.0");
    assert_eq!(report.contract_version, "0.2.0");
    assert_eq!(
        report.size_bytes as u64,
        std::fs::metadata(&path).unwrap().len()
    );
    assert!(
        report
            .exports
            .contains(&"assay:plugin/scorer@0.2.0".to_string())
    );
    assert!(
        report
            .imports
            .iter()
            .all(|i| i.starts_with("wasi:") || i.starts_with("assay:plugin/types@")),
        "{:?}",
        report.imports
    );
    let text = report.to_string();
    assert!(
        text.contains("exact-match") && text.contains(&report.digest),
        "{text}"
    );
    let json: Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["kind"], "scorer");
    assert_eq!(json["contractVersion"], "0.2.0");
}

#[tokio::test]
async fn on_demand_allocation_works_too() {
    let host = assay_plugin_host::PluginHost::new(assay_plugin_host::HostConfig {
        pooling: false,
        ..Default::default()
    })
    .unwrap();
    assert!(!host.uses_pooling());
    let scorer = host
        .load_file(&assay_test_support::plugin_wasm("exact-match"))
        .unwrap();
    let it = item(json!("q"), Some(json!("a")));
    let out = scorer
        .score(&it, Some(&json!("a")), None, &Limits::scorer_default())
        .await
        .unwrap();
    assert_eq!(out.value, 1.0);
    // The memory limit holds without the pool as well.
    let bomb = host
        .load_file(&assay_test_support::plugin_wasm("hostile-target"))
        .unwrap();
    let limits = Limits {
        max_memory_bytes: 8 << 20,
        ..quick_limits()
    };
    let err = bomb
        .run_target(&item(json!("alloc"), None), None, &limits)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "plugin exceeded its memory limit of 8 MiB");
}

#[tokio::test]
async fn per_call_memory_limit_is_capped_by_the_host() {
    // A per-call limit above the host's slot size is clamped, and the
    // message names the limit that actually applied.
    let host = assay_plugin_host::PluginHost::new(assay_plugin_host::HostConfig {
        max_memory_bytes: 32 << 20,
        max_instances: 4,
        ..Default::default()
    })
    .unwrap();
    let bomb = host
        .load_file(&assay_test_support::plugin_wasm("hostile-target"))
        .unwrap();
    let limits = Limits {
        max_memory_bytes: 512 << 20,
        ..quick_limits()
    };
    let err = bomb
        .run_target(&item(json!("alloc"), None), None, &limits)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin exceeded its memory limit of 32 MiB"
    );
}
