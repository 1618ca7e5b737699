//! Hostile plugins: each gives its precise error, and the same host keeps
//! serving good plugins afterwards.

mod common;

use std::time::{Duration, Instant};

use assay_plugin_host::{
    CallError, CallFailure, HostConfig, KeepResident, Limits, Plugin, PluginHost,
    RECOMMENDED_KEEP_RESIDENT_BYTES,
};
use common::{good_call_works, item, plugin, quick_limits};
use serde_json::{Value, json};

async fn hostile_target(mode: &str, limits: &Limits) -> CallFailure {
    plugin("hostile-target")
        .run_target(&item(json!(mode), None), None, limits)
        .await
        .expect_err(mode)
}

async fn hostile_scorer(mode: &str, limits: &Limits) -> CallFailure {
    plugin("hostile-scorer")
        .score(&item(json!(mode), None), None, None, limits)
        .await
        .expect_err(mode)
}

#[tokio::test]
async fn oversized_random_request_traps_instead_of_allocating() {
    let failure = hostile_scorer("random", &quick_limits()).await;
    let CallError::Trap { message } = &failure.error else {
        panic!("expected a trap, got {:?}", failure.error);
    };
    assert!(
        message.contains("exceeds limit 1048576"),
        "names the limit: {message}"
    );
    // Within the bound the call succeeds.
    let ok = plugin("hostile-scorer")
        .score(
            &item(json!("random"), None),
            None,
            Some(&json!({"mode": "random", "bytes": 4096})),
            &quick_limits(),
        )
        .await
        .expect("small random request");
    assert_eq!(ok.reason.as_deref(), Some("got 4096 random bytes"));
    good_call_works().await;
}

#[tokio::test]
async fn long_error_message_is_capped_and_keeps_its_kind() {
    let limits = Limits {
        max_output_bytes: 1024,
        ..quick_limits()
    };
    let failure = hostile_scorer("long-error", &limits).await;
    let CallError::Transient(message) = &failure.error else {
        panic!("expected a transient error, got {:?}", failure.error);
    };
    assert!(message.len() < 1100, "{} bytes", message.len());
    assert!(
        message.ends_with("[cut: 2097152 bytes, limit 1024]"),
        "{}",
        &message[1000..]
    );
}

#[tokio::test]
async fn infinite_loop_times_out_on_time() {
    let limits = Limits::default().with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let failure = hostile_target("loop", &limits).await;
    let took = started.elapsed();
    assert_eq!(
        failure.error,
        CallError::Timeout {
            after: Duration::from_millis(300)
        }
    );
    assert_eq!(failure.to_string(), "plugin exceeded its 300ms time limit");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(400), "stopped late: {took:?}");
    good_call_works().await;
}

#[tokio::test]
async fn scorer_loop_times_out_with_a_message_naming_the_limit() {
    let limits = Limits::scorer_default().with_timeout(Duration::from_secs(1));
    let failure = hostile_scorer("loop", &limits).await;
    assert_eq!(failure.to_string(), "plugin exceeded its 1s time limit");
    good_call_works().await;
}

#[tokio::test(flavor = "current_thread")]
async fn loop_does_not_block_a_single_threaded_runtime() {
    // On a current-thread runtime a guest that never yielded would starve
    // this ticker task; epoch yields let it run.
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let limits = Limits::default().with_timeout(Duration::from_millis(500));
    let failure = hostile_target("loop", &limits).await;
    assert_eq!(failure.error.kind(), "timeout");
    ticker.abort();
    let n = ticks.load(std::sync::atomic::Ordering::Relaxed);
    assert!(n >= 10, "the runtime was blocked: only {n} ticks in 500 ms");
}

#[tokio::test]
async fn dropped_call_stops_the_guest() {
    let target = plugin("hostile-target");
    let call_item = item(json!("loop"), None);
    let limits = Limits::default().with_timeout(Duration::from_secs(60));
    // Cancel the 60 s call after 100 ms by dropping its future.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        target.run_target(&call_item, None, &limits),
    )
    .await;
    assert!(cancelled.is_err(), "the loop cannot finish by itself");
    // The host is not stuck: a good call completes promptly.
    let started = Instant::now();
    good_call_works().await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let limits = Limits {
        max_memory_bytes: 16 << 20,
        ..quick_limits()
    };
    let failure = hostile_target("alloc", &limits).await;
    assert_eq!(
        failure.error,
        CallError::MemoryLimit {
            limit_bytes: 16 << 20
        }
    );
    assert_eq!(
        failure.to_string(),
        "plugin exceeded its memory limit of 16 MiB"
    );
    good_call_works().await;
}

#[tokio::test]
async fn memory_bomb_with_default_limit_names_64_mib() {
    let failure = hostile_target("alloc", &quick_limits()).await;
    assert_eq!(
        failure.to_string(),
        "plugin exceeded its memory limit of 64 MiB"
    );
}

#[tokio::test]
async fn deep_recursion_is_a_stack_overflow_trap() {
    let failure = hostile_target("recurse", &quick_limits()).await;
    assert_eq!(
        failure.error,
        CallError::Trap {
            message: "plugin overflowed its stack".into()
        }
    );
    good_call_works().await;
}

#[tokio::test]
async fn panic_reports_the_panic_message() {
    for failure in [
        hostile_target("panic", &quick_limits()).await,
        hostile_scorer("panic", &Limits::scorer_default()).await,
    ] {
        assert_eq!(
            failure.error,
            CallError::Panic {
                message: "hostile panic: boom".into()
            }
        );
        assert_eq!(failure.to_string(), "plugin panicked: hostile panic: boom");
        assert!(failure.logs.stderr.contains("panicked at"), "stderr kept");
    }
    good_call_works().await;
}

#[tokio::test]
async fn invalid_json_output_is_reported() {
    let failure = hostile_target("invalid-json", &quick_limits()).await;
    let CallError::InvalidJson { what, .. } = &failure.error else {
        panic!("expected InvalidJson, got {:?}", failure.error);
    };
    assert_eq!(*what, "output");
    assert!(
        failure
            .to_string()
            .starts_with("plugin returned invalid JSON as output: "),
        "{failure}"
    );
    good_call_works().await;
}

#[tokio::test]
async fn huge_output_is_too_large() {
    let failure = hostile_target("huge-output", &quick_limits()).await;
    match failure.error {
        CallError::OutputTooLarge { size, limit } => {
            assert_eq!(limit, 1 << 20);
            assert!(size > 5 << 20, "{size}");
        }
        other => panic!("expected OutputTooLarge, got {other:?}"),
    }
    good_call_works().await;
}

#[tokio::test]
async fn bad_scores_are_out_of_range() {
    for (mode, expect_nan) in [("nan", true), ("out-of-range", false)] {
        let failure = hostile_scorer(mode, &Limits::scorer_default()).await;
        let CallError::ScoreOutOfRange { value } = failure.error else {
            panic!("{mode}: expected ScoreOutOfRange, got {:?}", failure.error);
        };
        assert_eq!(value.is_nan(), expect_nan, "{mode}");
        if !expect_nan {
            assert_eq!(value, 1.5);
            assert_eq!(
                failure.to_string(),
                "plugin returned score 1.5, outside [0, 1]"
            );
        }
    }
}

#[tokio::test]
async fn sleeping_guest_times_out_via_the_async_timeout() {
    // A guest blocked in a host call (sleep) sees no epoch ticks; the tokio
    // timeout must still end the call.
    let limits = Limits::default().with_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let failure = plugin("hostile-target")
        .run_target(
            &item(json!("sleep"), None),
            Some(&json!({"mode": "sleep", "ms": 10_000})),
            &limits,
        )
        .await
        .unwrap_err();
    assert_eq!(failure.error.kind(), "timeout");
    assert!(started.elapsed() < Duration::from_millis(400));
    good_call_works().await;
}

#[tokio::test]
async fn sleeping_scorer_within_its_limit_succeeds() {
    let score = plugin("hostile-scorer")
        .score(
            &item(json!("slow"), None),
            None,
            Some(&json!({"mode": "slow", "ms": 50})),
            &Limits::scorer_default(),
        )
        .await
        .unwrap();
    assert_eq!(score.value, 1.0);
}

/// A host whose freed slots keep the pages a call wrote (as `assay run`'s
/// does), with `max_instances` slots, and no free slot kept for the plugin
/// that used it last: a plugin finding no slot of its own takes another's,
/// so slots pass between plugins as often as they can.
fn host_keeping_written_pages(max_instances: u32) -> PluginHost {
    let host = PluginHost::new(HostConfig {
        max_instances,
        keep_resident_bytes: RECOMMENDED_KEEP_RESIDENT_BYTES,
        idle_slots_kept: 0,
        ..HostConfig::default()
    })
    .expect("plugin host");
    if !matches!(host.keep_resident(), KeepResident::Kept(_)) {
        eprintln!(
            "note: this machine keeps no written pages ({:?}); checking isolation without them",
            host.keep_resident()
        );
    }
    host
}

async fn remember(target: &Plugin, then_panic: bool) -> Result<Value, CallFailure> {
    let input = if then_panic {
        json!({"mode": "remember", "then": "panic"})
    } else {
        json!("remember")
    };
    target
        .run_target(&item(input, None), None, &Limits::default())
        .await
        .map(|out| out.output)
}

fn pristine() -> Value {
    json!({
        "callsBefore": 0,
        "dirtyZeroedBytes": 0,
        "dirtyImageBytes": 0,
        "dirtyGrownBytes": 0,
        "dirtyStackBytes": 0,
    })
}

/// Freed slots keep the pages a call wrote and reset them in place: a call
/// must still find no trace of any earlier call, in zeroed or initialised
/// data, in grown memory or on the stack, when the earlier call trapped,
/// and when its slot last held another plugin (one slot shared by three).
#[tokio::test]
async fn no_call_sees_what_an_earlier_call_left_in_memory() {
    let host = host_keeping_written_pages(1);
    let load = |name: &str| {
        host.load_file(&assay_test_support::plugin_wasm(name))
            .unwrap_or_else(|e| panic!("load {name}: {e}"))
    };
    let (target, scorer, echo) = (load("hostile-target"), load("exact-match"), load("echo"));
    for round in 0..6 {
        assert_eq!(
            remember(&target, false).await.unwrap(),
            pristine(),
            "round {round}"
        );
        let trapped = remember(&target, true)
            .await
            .expect_err("trap after marking");
        assert!(
            matches!(trapped.error, CallError::Panic { .. }),
            "{:?}",
            trapped.error
        );
        assert_eq!(
            remember(&target, false).await.unwrap(),
            pristine(),
            "after a trap, round {round}"
        );
        let it = item(json!("q"), Some(json!("yes")));
        let score = scorer
            .score(&it, Some(&json!("yes")), None, &Limits::scorer_default())
            .await
            .expect("exact-match in the same slot");
        assert_eq!(score.value, 1.0);
        let echoed = echo
            .run_target(
                &item(json!({"round": round}), None),
                None,
                &Limits::default(),
            )
            .await
            .expect("echo in the same slot");
        assert_eq!(echoed.output, json!({"round": round}));
    }
}

/// The detector above sees marks when they are there: two `remember`s in
/// one instance find each other's.
#[tokio::test]
async fn the_memory_detector_sees_marks_left_in_the_same_instance() {
    let output = plugin("hostile-target")
        .run_target(
            &item(json!("remember-twice"), None),
            None,
            &Limits::default(),
        )
        .await
        .unwrap()
        .output;
    assert_eq!(output["callsBefore"], 1, "{output}");
    // Every other 4 KiB page of each area was marked (for grown memory, the
    // region the first call grew: the second grows onto fresh pages).
    assert_eq!(output["dirtyZeroedBytes"], 2 << 20, "{output}");
    assert_eq!(output["dirtyImageBytes"], 32 << 10, "{output}");
    assert_eq!(output["dirtyGrownBytes"], 512 << 10, "{output}");
    assert!(output["dirtyStackBytes"].as_u64().unwrap() > 0, "{output}");
}

/// The same with many calls side by side, slots passing between plugins.
#[tokio::test]
async fn no_call_sees_an_earlier_call_with_calls_side_by_side() {
    let host = host_keeping_written_pages(6);
    let target = host
        .load_file(&assay_test_support::plugin_wasm("hostile-target"))
        .unwrap();
    let scorer = host
        .load_file(&assay_test_support::plugin_wasm("exact-match"))
        .unwrap();
    let (target, scorer) = (&target, &scorer);
    for _ in 0..5 {
        let calls: Vec<_> = (0..16)
            .map(|i| async move {
                if i % 2 == 0 {
                    Some(remember(target, i % 4 == 0).await)
                } else {
                    let it = item(json!("q"), Some(json!("yes")));
                    scorer
                        .score(&it, Some(&json!("yes")), None, &Limits::scorer_default())
                        .await
                        .expect("exact-match call");
                    None
                }
            })
            .collect();
        for (i, outcome) in futures::future::join_all(calls)
            .await
            .into_iter()
            .enumerate()
        {
            match outcome {
                Some(Ok(output)) => assert_eq!(output, pristine(), "call {i}"),
                Some(Err(failure)) => assert!(
                    i % 4 == 0 && matches!(failure.error, CallError::Panic { .. }),
                    "call {i}: {:?}",
                    failure.error
                ),
                None => {}
            }
        }
    }
}
