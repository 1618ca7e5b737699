//! Runs end to end, driven like Mastra's playground drives them: trigger,
//! poll, read results, cancel, delete, compare; and resume after shutdown.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestServer, assert_error};

/// `n` items; items at even positions expect their own input (exact-match
/// scores 1 for them with an echoing target), odd ones something else.
fn items(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let input = json!({"q": i});
            let expected = if i % 2 == 0 {
                input.clone()
            } else {
                json!("other")
            };
            json!({"input": input, "expectedOutput": expected})
        })
        .collect()
}

fn sleepy(ms: u64) -> Value {
    json!({"mode": "sleep", "ms": ms})
}

fn count(run: &Value, field: &str) -> i64 {
    run[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} in {run}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triggered_run_is_polled_from_pending_to_completed() {
    let s = TestServer::start().await;
    s.upload_plugin("hostile-target").await;
    s.upload_plugin("exact-match").await;
    let total = 30;
    let ds = s.dataset_with_items("polled", items(total)).await;

    let (status, trigger) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({
                "targetType": "agent",
                "targetId": "hostile-target",
                "scorerIds": ["exact-match"],
                "maxConcurrency": 2,
                "targetConfig": sleepy(150),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{trigger}");
    // Mastra's trigger answer, with nothing done yet.
    let run_id = trigger["runId"].as_str().unwrap().to_string();
    assert_eq!(trigger["status"], "pending");
    assert_eq!(trigger["totalItems"], total);
    assert_eq!(trigger["succeededCount"], 0);
    assert_eq!(trigger["failedCount"], 0);
    assert_eq!(trigger["startedAt"], Value::Null);
    assert_eq!(trigger["completedAt"], Value::Null);
    assert_eq!(trigger["results"], json!([]));

    // A running run cannot be deleted.
    let run_path = format!("/api/datasets/{ds}/runs/{run_id}");
    let (status, body) = s.delete(&run_path).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");

    let seen = s
        .poll_run(
            &ds,
            &run_id,
            Duration::from_millis(200),
            Duration::from_secs(60),
        )
        .await;
    let statuses: Vec<&str> = seen.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert!(
        statuses.len() >= 2 && matches!(statuses[0], "pending" | "running"),
        "the first poll sees the run before it finished: {statuses:?}"
    );
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "completed", "{last}");
    assert_eq!(last["id"], run_id.as_str(), "GET run answers the bare run");
    assert_eq!(count(last, "succeededCount"), total as i64);
    assert_eq!(count(last, "failedCount"), 0);
    assert!(last["startedAt"].is_string() && last["completedAt"].is_string());
    // Status only moves forward and counts only grow.
    let rank = |s: &str| {
        ["pending", "running", "completed"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    for pair in seen.windows(2) {
        assert!(
            rank(pair[0]["status"].as_str().unwrap()) <= rank(pair[1]["status"].as_str().unwrap())
        );
        assert!(count(&pair[0], "succeededCount") <= count(&pair[1], "succeededCount"));
    }
    assert!(
        seen.iter()
            .any(|r| r["status"] == "running"
                && (1..total as i64).contains(&count(r, "succeededCount"))),
        "a poller sees progress during the run: {:?}",
        seen.iter()
            .map(|r| (r["status"].clone(), r["succeededCount"].clone()))
            .collect::<Vec<_>>()
    );

    // Every result, page by page, in dataset order, with its score.
    let results = s.all_results(&ds, &run_id, 7).await;
    assert_eq!(results.len(), total);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["itemIndex"], i, "{r}");
        assert_eq!(r["runId"], run_id.as_str());
        assert_eq!(r["input"], json!({"q": i}));
        assert_eq!(r["output"], json!({"q": i}));
        assert_eq!(r["error"], Value::Null);
        let scores = r["scores"].as_array().unwrap();
        assert_eq!(scores.len(), 1, "{r}");
        assert_eq!(scores[0]["scorerId"], "exact-match");
        let want = if i % 2 == 0 { 1.0 } else { 0.0 };
        assert_eq!(scores[0]["score"].as_f64(), Some(want), "{r}");
    }

    // The run list shows it; the finished run can be deleted.
    let (_, list) = s.get(&format!("/api/datasets/{ds}/runs")).await;
    assert_eq!(list["runs"][0]["id"], run_id.as_str());
    assert_eq!(list["pagination"]["total"], 1);
    let (status, body) = s.post_empty(&format!("{run_path}/cancel")).await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, _) = s.delete(&run_path).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s.get(&run_path).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s.get(&format!("{run_path}/results")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_ends_cancelled_with_consistent_counts() {
    let s = TestServer::start().await;
    s.upload_plugin("hostile-target").await;
    let total = 40;
    let ds = s.dataset_with_items("cancelled", items(total)).await;
    let (status, trigger) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "hostile-target", "maxConcurrency": 2,
                   "targetConfig": sleepy(300)}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{trigger}");
    let run_id = trigger["runId"].as_str().unwrap().to_string();
    let run_path = format!("/api/datasets/{ds}/runs/{run_id}");

    // Wait until some items are done, then cancel.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, run) = s.get(&run_path).await;
        if run["status"] == "running" && count(&run, "succeededCount") >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run never progressed: {run}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, cancelled) = s.post_empty(&format!("{run_path}/cancel")).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["id"], run_id.as_str());

    let seen = s
        .poll_run(
            &ds,
            &run_id,
            Duration::from_millis(100),
            Duration::from_secs(30),
        )
        .await;
    let run = seen.last().unwrap();
    assert_eq!(run["status"], "cancelled", "{run}");
    let (ok, failed, skipped) = (
        count(run, "succeededCount"),
        count(run, "failedCount"),
        count(run, "skippedCount"),
    );
    assert_eq!(ok + failed + skipped, total as i64, "{run}");
    assert!(skipped > 0, "cancel stopped the run early: {run}");
    let results = s.all_results(&ds, &run_id, 100).await;
    assert_eq!(
        results.len() as i64,
        ok + failed,
        "one result per finished item"
    );
    // Nothing is written after the run was finalized.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, later) = s.get(&run_path).await;
    assert_eq!(later["succeededCount"], run["succeededCount"]);
    assert_eq!(s.all_results(&ds, &run_id, 100).await.len(), results.len());

    // A cancelled run can be deleted.
    let (status, _) = s.delete(&run_path).await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_run_is_cancelled_at_once() {
    // One active run per process: the second run waits as pending.
    let s = TestServer::start_with(|c| c.max_active_runs = 1).await;
    s.upload_plugin("hostile-target").await;
    let ds = s.dataset_with_items("queue", items(10)).await;
    let runs = format!("/api/datasets/{ds}/runs");
    let trigger = |ms| {
        s.post(
            &runs,
            json!({"targetType": "plugin", "targetId": "hostile-target", "maxConcurrency": 1,
                   "targetConfig": sleepy(ms)}),
        )
    };
    let (_, first) = trigger(200).await;
    let (_, second) = trigger(10).await;
    let second = second["runId"].as_str().unwrap().to_string();
    let (status, run) = s
        .post_empty(&format!("/api/datasets/{ds}/runs/{second}/cancel"))
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(run["skippedCount"], 10);
    let first = first["runId"].as_str().unwrap();
    let (status, _) = s
        .post_empty(&format!("/api/datasets/{ds}/runs/{first}/cancel"))
        .await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}

/// Triggers a run and waits for it to finish; returns the finished run.
async fn run_to_end(s: &TestServer, ds: &str, body: Value) -> Value {
    let (status, t) = s.post(&format!("/api/datasets/{ds}/runs"), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{t}");
    let id = t["runId"].as_str().unwrap();
    let seen = s
        .poll_run(ds, id, Duration::from_millis(100), Duration::from_secs(30))
        .await;
    seen.last().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_compared_and_all_failed_runs_fail() {
    let s = TestServer::start().await;
    s.upload_plugin("echo").await;
    s.upload_plugin("hostile-target").await;
    s.upload_plugin("exact-match").await;
    let ds = s.dataset_with_items("cmp", items(6)).await;
    let echo = json!({"targetType": "plugin", "targetId": "echo", "scorerIds": ["exact-match"]});
    let a = run_to_end(&s, &ds, echo.clone()).await;
    assert_eq!(a["status"], "completed", "{a}");

    // Item 0 no longer matches: the next run scores worse.
    let (_, list) = s.get(&format!("/api/datasets/{ds}/items")).await;
    let item0 = list["items"][0]["id"].as_str().unwrap();
    let (status, body) = s
        .patch(
            &format!("/api/datasets/{ds}/items/{item0}"),
            json!({"expectedOutput": "changed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let b = run_to_end(&s, &ds, echo).await;

    let (status, cmp) = s
        .post(
            &format!("/api/datasets/{ds}/compare"),
            json!({"runIdA": a["id"], "runIdB": b["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cmp}");
    assert_eq!(cmp["hasRegression"], true, "{cmp}");
    assert_eq!(cmp["versionMismatch"], true, "{cmp}");
    let scorer = &cmp["scorers"]["exact-match"];
    assert_eq!(scorer["statsA"]["avgScore"].as_f64(), Some(0.5), "{cmp}");
    assert!(
        (scorer["delta"].as_f64().unwrap() + 1.0 / 6.0).abs() < 1e-9,
        "{cmp}"
    );
    assert_eq!(cmp["items"].as_array().unwrap().len(), 6);
    assert_eq!(cmp["itemsTotal"], 6, "{cmp}");
    assert_eq!(cmp["regressedItems"], 1, "{cmp}");
    assert_eq!(cmp["nextAfterIndex"], Value::Null, "{cmp}");
    let all: Vec<Value> = cmp["items"].as_array().unwrap().clone();
    let index_of = |i: &Value| i["itemIndex"].as_i64().unwrap();
    // Windows of two, chained by nextAfterIndex, list the same items, each
    // with Mastra's fields.
    let mut walked = Vec::new();
    let mut after = Value::Null;
    loop {
        let (status, page) = s
            .post(
                &format!("/api/datasets/{ds}/compare"),
                json!({"runIdA": a["id"], "runIdB": b["id"], "limit": 2, "afterIndex": after}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2, "{page}");
        assert!(
            items
                .iter()
                .all(|i| i["input"].is_object() && i["results"].is_object())
        );
        assert_eq!(page["itemsTotal"], 6);
        walked.extend(items.iter().cloned());
        after = page["nextAfterIndex"].clone();
        if after.is_null() {
            break;
        }
    }
    assert_eq!(
        walked.iter().map(index_of).collect::<Vec<_>>(),
        all.iter().map(index_of).collect::<Vec<_>>()
    );
    // Only the regressed item, when asked.
    let (_, only) = s
        .post(
            &format!("/api/datasets/{ds}/compare"),
            json!({"runIdA": a["id"], "runIdB": b["id"], "regressedOnly": true}),
        )
        .await;
    let only = only["items"].as_array().unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["itemId"], item0);
    assert_eq!(only[0]["regressed"], true);
    for limit in [0, 10_001] {
        let (status, body) = s
            .post(
                &format!("/api/datasets/{ds}/compare"),
                json!({"runIdA": a["id"], "runIdB": b["id"], "limit": limit}),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_body");
        assert_eq!(body["field"], "limit", "{body}");
    }
    // A tolerant threshold: no regression.
    let (_, cmp) = s
        .post(
            &format!("/api/datasets/{ds}/compare"),
            json!({"runIdA": a["id"], "runIdB": b["id"],
                   "thresholds": {"exact-match": {"value": 0.5, "direction": "higher-is-better"}}}),
        )
        .await;
    assert_eq!(cmp["hasRegression"], false, "{cmp}");

    // Every item failing: the run is `failed`, each result carries its error.
    let c = run_to_end(
        &s,
        &ds,
        json!({"targetType": "plugin", "targetId": "hostile-target", "targetConfig": {"mode": "fail"}}),
    )
    .await;
    assert_eq!(c["status"], "failed", "{c}");
    assert_eq!(c["failedCount"], 6);
    let results = s.all_results(&ds, c["id"].as_str().unwrap(), 100).await;
    assert!(
        results.iter().all(|r| r["error"].is_string()),
        "{results:?}"
    );

    // A run of another dataset is not found through this one.
    let other = s.dataset_with_items("other", items(1)).await;
    let (status, body) = s
        .post(
            &format!("/api/datasets/{other}/compare"),
            json!({"runIdA": a["id"], "runIdB": b["id"]}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s
        .get(&format!(
            "/api/datasets/{other}/runs/{}",
            a["id"].as_str().unwrap()
        ))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_interrupted_by_shutdown_resumes_on_the_next_start() {
    let s = TestServer::start_with(|c| c.grace = Duration::from_millis(200)).await;
    s.upload_plugin("hostile-target").await;
    let total = 20;
    let ds = s.dataset_with_items("resume", items(total)).await;
    let (_, t) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "hostile-target", "maxConcurrency": 2,
                   "targetConfig": sleepy(200)}),
        )
        .await;
    let run_id = t["runId"].as_str().unwrap().to_string();
    let run_path = format!("/api/datasets/{ds}/runs/{run_id}");
    loop {
        let (_, run) = s.get(&run_path).await;
        if count(&run, "succeededCount") >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dir = s.stop().await;

    let s = TestServer::start_in(dir, |_| {}).await;
    let (_, run) = s.get(&run_path).await;
    assert!(
        matches!(run["status"].as_str(), Some("running" | "completed")),
        "the run is left resumable, not failed: {run}"
    );
    let seen = s
        .poll_run(
            &ds,
            &run_id,
            Duration::from_millis(100),
            Duration::from_secs(60),
        )
        .await;
    let run = seen.last().unwrap();
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(count(run, "succeededCount"), total as i64);
    let results = s.all_results(&ds, &run_id, 100).await;
    assert_eq!(results.len(), total, "each item has exactly one result");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_summary_gives_per_scorer_statistics_that_match_compare() {
    let s = TestServer::start().await;
    s.upload_plugin("hostile-target").await;
    s.upload_plugin("exact-match").await;
    // Four items the target echoes (the even ones match), two it fails.
    let mut rows = items(4);
    rows.extend((0..2).map(|i| json!({"input": {"mode": "fail", "n": i}})));
    let ds = s.dataset_with_items("summary", rows).await;
    let run = run_to_end(
        &s,
        &ds,
        json!({"targetType": "plugin", "targetId": "hostile-target", "scorerIds": ["exact-match"]}),
    )
    .await;
    assert_eq!(run["status"], "completed", "{run}");
    let run_id = run["id"].as_str().unwrap();
    let path = format!("/api/datasets/{ds}/runs/{run_id}/summary");

    let (status, summary) = s.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["runId"], run_id);
    assert_eq!(summary["datasetName"], "summary");
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["totalItems"], 6);
    assert_eq!(summary["succeededCount"], 4);
    assert_eq!(summary["failedCount"], 2);
    assert_eq!(summary["pendingCount"], 0);
    assert_eq!(summary["passThreshold"], 0.5);
    assert_eq!(summary["latencyMs"]["count"], 6, "{summary}");
    let scorer = &summary["scorers"][0];
    assert_eq!(scorer["scorerId"], "exact-match", "{summary}");
    assert_eq!(scorer["scoredCount"], 4, "failed items are not scored");
    assert_eq!(scorer["passCount"], 2, "{summary}");
    assert_eq!(scorer["mean"], 0.5, "{summary}");
    assert_eq!(scorer["passRate"], 0.5, "{summary}");
    assert_eq!(
        scorer["histogram"],
        json!([2, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
        "two zeros, two ones"
    );
    let failures = summary["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{summary}");
    assert_eq!(failures[0]["source"], "target");
    assert_eq!(failures[0]["count"], 2);
    assert_eq!(failures[0]["itemIndexes"], json!([4, 5]));

    // The same tallies as compare.
    let (status, cmp) = s
        .post(
            &format!("/api/datasets/{ds}/compare"),
            json!({"runIdA": run_id, "runIdB": run_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cmp}");
    let stats = &cmp["scorers"]["exact-match"]["statsA"];
    assert_eq!(stats["avgScore"], scorer["mean"], "{cmp}");
    assert_eq!(stats["passCount"], scorer["passCount"], "{cmp}");
    assert_eq!(stats["scoreCount"], scorer["scoredCount"], "{cmp}");

    // The results page filters in the server: failed items, low scores.
    let results = format!("/api/datasets/{ds}/runs/{run_id}/results");
    let indexes = |body: &Value| -> Vec<i64> {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["itemIndex"].as_i64().unwrap())
            .collect()
    };
    let (status, failed) = s.get(&format!("{results}?failed=true")).await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    assert_eq!(indexes(&failed), [4, 5], "{failed}");
    assert_eq!(failed["pagination"]["total"], 2);
    let (_, low) = s
        .get(&format!("{results}?scorer=exact-match&below=0.5&perPage=1"))
        .await;
    assert_eq!(low["pagination"]["total"], 2, "{low}");
    assert_eq!(low["pagination"]["hasMore"], true, "{low}");
    let first = indexes(&low)[0];
    assert_eq!(first % 2, 1, "odd items do not match: {low}");
    for (bad, code) in [
        ("scorer=exact-match", "invalid_query"),
        ("below=0.5", "invalid_query"),
        ("scorer=nope&below=0.5", "invalid_query"),
        ("failed=maybe", "invalid_query"),
        ("status=failed", "invalid_query"),
    ] {
        let (status, body) = s.get(&format!("{results}?{bad}")).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, code);
    }

    // A pass threshold above every score: nothing passes, the mean stays.
    let (status, strict) = s.get(&format!("{path}?passThreshold=1.5")).await;
    assert_eq!(status, StatusCode::OK, "{strict}");
    assert_eq!(strict["passThreshold"], 1.5);
    assert_eq!(strict["scorers"][0]["passCount"], 0, "{strict}");
    assert_eq!(strict["scorers"][0]["mean"], 0.5, "{strict}");

    // Bad queries are refused, not ignored.
    for bad in [
        "passThreshold=high",
        "passThreshold=NaN",
        "pass_threshold=0.2",
    ] {
        let (status, body) = s.get(&format!("{path}?{bad}")).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_query");
    }

    // A run of another dataset is not found through this one.
    let other = s.dataset_with_items("other", items(1)).await;
    let (status, body) = s
        .get(&format!("/api/datasets/{other}/runs/{run_id}/summary"))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_is_rescored_from_its_stored_outputs() {
    let s = TestServer::start().await;
    s.upload_plugin("echo").await;
    s.upload_plugin("exact-match").await;
    s.upload_plugin("levenshtein").await;
    let ds = s.dataset_with_items("rescored", items(6)).await;
    let parent = run_to_end(
        &s,
        &ds,
        json!({"targetType": "plugin", "targetId": "echo", "scorerIds": ["exact-match"]}),
    )
    .await;
    assert_eq!(parent["status"], "completed", "{parent}");
    let parent_id = parent["id"].as_str().unwrap();
    // The target is unregistered: only a run that does not call it can
    // still complete.
    let (status, body) = s.delete("/api/plugins/echo").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let path = format!("/api/datasets/{ds}/runs/{parent_id}/rescore");
    let (status, t) = s
        .post(&path, json!({"scorerIds": ["levenshtein", "exact-match"]}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{t}");
    assert_eq!(t["status"], "pending");
    let child_id = t["runId"].as_str().unwrap().to_string();
    let seen = s
        .poll_run(
            &ds,
            &child_id,
            Duration::from_millis(100),
            Duration::from_secs(30),
        )
        .await;
    let child = seen.last().unwrap();
    assert_eq!(child["status"], "completed", "{child}");
    assert_eq!(child["parentRunId"], parent_id);
    assert_eq!(child["targetId"], "echo");
    assert_eq!(child["succeededCount"], 6);

    let before = s.all_results(&ds, parent_id, 100).await;
    let after = s.all_results(&ds, &child_id, 100).await;
    assert_eq!(after.len(), 6);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a["itemId"], b["itemId"]);
        assert_eq!(a["output"], b["output"]);
        assert_eq!(b["scores"].as_array().unwrap().len(), 2, "{b}");
    }
    let (_, cmp) = s
        .post(
            &format!("/api/datasets/{ds}/compare"),
            json!({"runIdA": parent_id, "runIdB": child_id}),
        )
        .await;
    assert_eq!(
        cmp["scorers"]["exact-match"]["delta"].as_f64(),
        Some(0.0),
        "{cmp}"
    );

    // Refusals: no scorer, a scorer twice, a config for another scorer, an
    // unknown scorer, an unfinished parent, an unknown run.
    for (body, field) in [
        (json!({"scorerIds": []}), "scorerIds"),
        (
            json!({"scorerIds": ["exact-match", "exact-match"]}),
            "scorerIds",
        ),
        (
            json!({"scorerIds": ["exact-match"], "scorerConfigs": {"levenshtein": {}}}),
            "scorerConfigs.levenshtein",
        ),
    ] {
        let (status, answer) = s.post(&path, body).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "invalid_option");
        assert_eq!(answer["field"], field, "{answer}");
    }
    let (status, answer) = s.post(&path, json!({"scorerIds": ["nope"]})).await;
    assert_error(status, &answer, StatusCode::BAD_REQUEST, "unknown_plugin");
    let (status, answer) = s
        .post(
            &format!("/api/datasets/{ds}/runs/nope/rescore"),
            json!({"scorerIds": ["exact-match"]}),
        )
        .await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found");
    // A run still producing outputs cannot be re-scored yet.
    s.upload_plugin("hostile-target").await;
    let (status, slow) = s
        .post(
            &format!("/api/datasets/{ds}/runs"),
            json!({"targetType": "plugin", "targetId": "hostile-target",
                   "maxConcurrency": 1, "targetConfig": sleepy(2000)}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{slow}");
    let slow_id = slow["runId"].as_str().unwrap();
    let (status, answer) = s
        .post(
            &format!("/api/datasets/{ds}/runs/{slow_id}/rescore"),
            json!({"scorerIds": ["exact-match"]}),
        )
        .await;
    assert_error(status, &answer, StatusCode::CONFLICT, "conflict");
    let (status, _) = s
        .post_empty(&format!("/api/datasets/{ds}/runs/{slow_id}/cancel"))
        .await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}

/// `repeat: 3` runs each item three times: the run counts trials, each
/// result names its trial, the summary's mean is over items with a standard
/// error and interval, and compare says whether two runs differ
/// significantly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_repeats_counts_trials_and_summarizes_over_items() {
    let s = TestServer::start().await;
    s.upload_plugin("echo").await;
    s.upload_plugin("exact-match").await;
    // Items 0 and 2 match their expected output, 1 and 3 do not: echo is
    // deterministic, so every trial of an item scores the same.
    let ds = s.dataset_with_items("repeats", items(4)).await;
    let body = json!({"targetType": "plugin", "targetId": "echo", "scorerIds": ["exact-match"],
                      "repeat": 3});
    let run = run_to_end(&s, &ds, body.clone()).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(
        (run["repeats"].as_i64(), run["totalItems"].as_i64()),
        (Some(3), Some(12))
    );
    assert_eq!(run["succeededCount"], 12, "{run}");
    let run_id = run["id"].as_str().unwrap();

    let results = s.all_results(&ds, run_id, 100).await;
    let pairs: Vec<(i64, i64)> = results
        .iter()
        .map(|r| {
            (
                r["itemIndex"].as_i64().unwrap(),
                r["trial"].as_i64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(i64, i64)> = (0..4).flat_map(|i| (0..3).map(move |t| (i, t))).collect();
    assert_eq!(pairs, want);

    let (status, summary) = s
        .get(&format!("/api/datasets/{ds}/runs/{run_id}/summary"))
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["repeats"], 3);
    let scorer = &summary["scorers"][0];
    // Item means 1, 0, 1, 0: mean 0.5, sd √(1/3), SE √(1/3) / 2.
    assert_eq!(scorer["itemCount"], 4, "{summary}");
    assert_eq!(scorer["scoredCount"], 12, "{summary}");
    assert_eq!(scorer["mean"].as_f64(), Some(0.5));
    let se = (1.0f64 / 3.0).sqrt() / 2.0;
    assert!(
        (scorer["standardError"].as_f64().unwrap() - se).abs() < 1e-9,
        "{summary}"
    );
    assert_eq!(
        scorer["ci95"].as_array().map(Vec::len),
        Some(2),
        "{summary}"
    );

    // The same run again: every per-item difference is 0, not significant.
    let again = run_to_end(&s, &ds, body).await;
    let (status, cmp) = s
        .post(
            &format!("/api/datasets/{ds}/compare"),
            json!({"runIdA": run_id, "runIdB": again["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cmp}");
    assert_eq!(cmp["itemsTotal"], 4, "{cmp}");
    let test = &cmp["scorers"]["exact-match"]["significance"];
    assert_eq!(test["pairs"], 4, "{cmp}");
    assert_eq!(test["meanDifference"], 0.0, "{cmp}");
    assert_eq!(test["significant"], false, "{cmp}");
    s.stop().await;
}

/// An API-only node (`assay serve --no-execute`) creates runs and
/// re-scoring runs, answers for them and cancels them, but executes none:
/// they stay pending until a node that executes runs shares its database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_only_node_leaves_its_runs_to_a_node_that_executes() {
    let api = TestServer::start_with(|c| c.execute = false).await;
    assert!(!api.state().executes_runs());
    let (status, health) = api.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["executesRuns"], false, "{health}");
    assert_eq!(health["activeRuns"], 0, "{health}");
    for plugin in ["echo", "exact-match", "levenshtein"] {
        api.upload_plugin(plugin).await;
    }
    let ds = api.dataset_with_items("api-only", items(4)).await;
    let runs = format!("/api/datasets/{ds}/runs");
    let body = json!({"targetType": "plugin", "targetId": "echo", "scorerIds": ["exact-match"]});
    let (status, t) = api.post(&runs, body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{t}");
    let run = t["runId"].as_str().unwrap().to_string();
    // Cancel needs no scheduler: a pending run is cancelled at once.
    let (_, t) = api.post(&runs, body).await;
    let dropped = t["runId"].as_str().unwrap().to_string();
    let (status, cancelled) = api.post_empty(&format!("{runs}/{dropped}/cancel")).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    // Nobody executes the run (a scheduler would take it within 500 ms).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, now) = api.get(&format!("{runs}/{run}")).await;
    assert_eq!(now["status"], "pending", "{now}");

    // A node that executes runs, on the same database, takes it.
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        api.dir.path().join("assay.db").display()
    );
    let executing = TestServer::start_with(|c| c.assembly.database_url = database_url).await;
    let seen = api
        .poll_run(
            &ds,
            &run,
            Duration::from_millis(100),
            Duration::from_secs(30),
        )
        .await;
    let done = seen.last().unwrap();
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["succeededCount"], 4, "{done}");
    // Re-scoring it through the API node: executed by the other node too.
    let (status, t) = api
        .post(
            &format!("{runs}/{run}/rescore"),
            json!({"scorerIds": ["levenshtein"]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{t}");
    let child = t["runId"].as_str().unwrap().to_string();
    let seen = api
        .poll_run(
            &ds,
            &child,
            Duration::from_millis(100),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(seen.last().unwrap()["status"], "completed");
    let (_, still) = api.get(&format!("{runs}/{dropped}")).await;
    assert_eq!(still["status"], "cancelled", "{still}");
    assert_eq!(api.state().active_runs(), 0);
    executing.stop().await;
    api.stop().await;
}
