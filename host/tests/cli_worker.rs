//! API nodes and workers on one database (PostgreSQL, and SQLite on one
//! machine): `assay serve --no-execute` creates, cancels and shows runs but
//! executes none; `assay worker` processes execute them, hand them over on
//! SIGTERM and stop them when a cancel is requested through the API node.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::processes::{Http, Server, Worker};
use common::{Env, plugin};
use serde_json::{Value, json};

/// An API node (`serve --no-execute`, JSON logs at info) on `env`'s
/// database, with `hostile-target` and `exact-match` registered and a
/// dataset of `items` items (`{"n": i}`, expecting themselves).
struct ApiNode {
    server: Server,
    http: Http,
    dataset: String,
}

impl ApiNode {
    fn start(env: &Env, items: usize) -> Self {
        env.cmd()
            .args([
                "plugin",
                "add",
                &plugin("hostile-target"),
                &plugin("exact-match"),
            ])
            .assert()
            .success();
        let lines: Vec<String> = (0..items)
            .map(|i| format!("{{\"input\": {{\"n\": {i}}}, \"expectedOutput\": {{\"n\": {i}}}}}"))
            .collect();
        let file = env.write("items.jsonl", &lines.join("\n"));
        let imported = env.json(&["dataset", "import", file.to_str().unwrap(), "--json"]);
        let dataset = imported["dataset"]["id"].as_str().unwrap().to_string();
        let mut cmd = env.std_cmd();
        cmd.env("ASSAY_LOG", "info").args([
            "--log-format",
            "json",
            "serve",
            "--no-execute",
            "--addr",
            "127.0.0.1:0",
            "--grace",
            "2s",
        ]);
        let server = Server::spawn(cmd);
        let key = env.json(&["key", "create", "--tenant", "default", "--json"]);
        let http = Http::new(key["token"].as_str().unwrap());
        Self {
            server,
            http,
            dataset,
        }
    }

    /// Triggers a run of `hostile-target` (with `target_config`) scored by
    /// `exact-match`; returns its URL.
    fn trigger(&self, target_config: Value) -> String {
        let runs = format!("{}/api/datasets/{}/runs", self.server.url, self.dataset);
        let (status, body) = self.http.post(
            &runs,
            &json!({"targetType": "plugin", "targetId": "hostile-target",
                    "scorerIds": ["exact-match"], "maxConcurrency": 2,
                    "targetConfig": target_config}),
        );
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["status"], "pending", "{body}");
        format!("{runs}/{}", body["runId"].as_str().unwrap())
    }

    /// The run at `url` once `done` holds for it.
    fn wait(&self, url: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        self.http.poll_until(url, within, done)
    }

    /// The item ids of the run's stored results (one page of up to 100).
    fn result_items(&self, run_url: &str) -> Vec<String> {
        let page = self.http.get(&format!("{run_url}/results?perPage=100"));
        assert!(
            page["pagination"]["total"].as_i64().unwrap() <= 100,
            "more results than one page holds: {page}"
        );
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["itemId"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Whether a process's JSON log has a `message` line about `run_id`.
fn logged(lines: &[Value], message: &str, run_id: &str) -> bool {
    lines.iter().any(|l| {
        l["fields"]["message"] == message
            && (l["span"]["run_id"] == run_id || l["fields"]["run_id"] == run_id)
    })
}

fn run_id(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

#[test]
fn runs_triggered_on_an_api_node_are_executed_by_a_worker() {
    let env = Env::postgres();
    let items = 6;
    let api = ApiNode::start(&env, items);
    let health = api.http.get(&format!("{}/health", api.server.url));
    assert_eq!(health["executesRuns"], false, "{health}");
    assert_eq!(health["activeRuns"], 0, "{health}");
    assert_eq!(health["database"], "postgres", "{health}");

    let run = api.trigger(json!({"mode": "echo"}));
    // No worker yet: nobody executes it.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let now = api.http.get(&run);
        assert_eq!(now["status"], "pending", "the API node executed it: {now}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A pending run is cancelled at once, with no worker involved.
    let dropped = api.trigger(json!({"mode": "echo"}));
    let (status, cancelled) = api.http.post(&format!("{dropped}/cancel"), &json!({}));
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");

    let worker = Worker::start(&env, "info", &["--log-format", "json"]);
    let done = api.wait(&run, Duration::from_secs(60), |r| {
        r["status"] == "completed"
    });
    assert_eq!(done["succeededCount"], items, "{done}");
    assert_eq!(api.result_items(&run).len(), items);
    // The worker executed it; the API node only created it.
    let worker_log = worker.process.json_log();
    assert!(
        logged(&worker_log, "run started", run_id(&run)),
        "the worker did not log the run's start: {:?}",
        worker.process.log()
    );
    let api_log = api.server.process.json_log();
    assert!(
        logged(&api_log, "run triggered", run_id(&run)),
        "{api_log:?}"
    );
    assert!(
        !logged(&api_log, "run started", run_id(&run)),
        "the API node executed the run: {api_log:?}"
    );
    // The cancelled run stayed cancelled: the worker never started it.
    let dropped_now = api.http.get(&dropped);
    assert_eq!(dropped_now["status"], "cancelled", "{dropped_now}");
    assert_eq!(dropped_now["succeededCount"], 0, "{dropped_now}");
    assert!(!logged(&worker_log, "run started", run_id(&dropped)));

    assert_eq!(worker.process.stop(), Some(0));
    assert_eq!(api.server.stop(), Some(0));
}

/// On SQLite too (one machine): a worker executes the runs an API node on
/// the same file creates.
#[test]
fn a_worker_on_sqlite_executes_the_runs_of_an_api_node_on_the_same_file() {
    let env = Env::new();
    let items = 5;
    let api = ApiNode::start(&env, items);
    let run = api.trigger(json!({"mode": "echo"}));
    let worker = Worker::start(&env, "warn", &[]);
    let done = api.wait(&run, Duration::from_secs(60), |r| {
        r["status"] == "completed"
    });
    assert_eq!(done["succeededCount"], items, "{done}");
    let health = api.http.get(&format!("{}/health", api.server.url));
    assert_eq!(health["database"], "sqlite", "{health}");
    assert_eq!(worker.process.stop(), Some(0));
    assert_eq!(api.server.stop(), Some(0));
}

#[test]
fn a_worker_stopped_mid_run_leaves_the_run_to_the_next_worker() {
    let env = Env::postgres();
    let items = 24;
    let api = ApiNode::start(&env, items);
    // 24 items of 300 ms, two at a time: about 3.6 s of work.
    let run = api.trigger(json!({"mode": "sleep", "ms": 300}));
    let first = Worker::start(&env, "info", &["--grace", "10s"]);
    api.wait(&run, Duration::from_secs(60), |r| {
        r["succeededCount"].as_i64().unwrap() >= 2
    });
    // SIGTERM: the in-flight items finish, the run is handed back.
    assert_eq!(first.process.signal_and_wait("TERM"), Some(0));
    let left = api.http.get(&run);
    assert!(
        left["status"] == "running" || left["status"] == "pending",
        "the run was finished by a stopped worker: {left}"
    );
    let done_by_first = left["succeededCount"].as_i64().unwrap();
    assert!(done_by_first < items as i64, "{left}");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        api.http.get(&run)["succeededCount"],
        done_by_first,
        "nobody executes the run once its worker stopped"
    );

    let second = Worker::start(&env, "info", &["--log-format", "json"]);
    let done = api.wait(&run, Duration::from_secs(60), |r| {
        r["status"] == "completed"
    });
    assert_eq!(done["succeededCount"], items, "{done}");
    assert_eq!(done["failedCount"], 0, "{done}");
    // A graceful hand-over is not a takeover of a dead process's run.
    assert_eq!(done["takeovers"], 0, "{done}");
    // Exactly one result per item.
    let results = api.result_items(&run);
    let distinct: BTreeSet<&String> = results.iter().collect();
    assert_eq!(results.len(), items, "{results:?}");
    assert_eq!(
        distinct.len(),
        items,
        "an item has two results: {results:?}"
    );
    assert!(
        logged(&second.process.json_log(), "run started", run_id(&run)),
        "the second worker did not resume the run: {:?}",
        second.process.log()
    );
    assert_eq!(second.process.stop(), Some(0));
    assert_eq!(api.server.stop(), Some(0));
}

#[test]
fn cancelling_on_the_api_node_stops_the_run_a_worker_executes() {
    let env = Env::postgres();
    let items = 40;
    let api = ApiNode::start(&env, items);
    // 40 items of 500 ms, two at a time: about 10 s of work. A short lease
    // makes the worker renew (and so hear of the cancel) every 500 ms.
    let run = api.trigger(json!({"mode": "sleep", "ms": 500}));
    let worker = Worker::start(&env, "info", &["--run-lease", "1500ms"]);
    api.wait(&run, Duration::from_secs(60), |r| {
        r["status"] == "running" && r["succeededCount"].as_i64().unwrap() >= 1
    });
    let (status, body) = api.http.post(&format!("{run}/cancel"), &json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cancelRequested"], true, "{body}");
    let cancelled = api.wait(&run, Duration::from_secs(15), |r| {
        r["status"] == "cancelled"
    });
    let finished = cancelled["succeededCount"].as_i64().unwrap();
    assert!(
        finished < items as i64,
        "the run ran to its end: {cancelled}"
    );
    // The worker's items stopped: no result is added afterwards.
    let stored = api.result_items(&run).len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(api.result_items(&run).len(), stored);
    assert_eq!(api.http.get(&run)["status"], "cancelled");
    assert_eq!(worker.process.stop(), Some(0));
    assert_eq!(api.server.stop(), Some(0));
}

/// After a run it executes is cancelled, a worker goes on executing the
/// next runs, ten times over. (It did not always: the executor aborted the
/// task recording the cancel while that task could be inside
/// `request_cancel`'s transaction; a `begin()` dropped midway left the
/// pooled PostgreSQL connection in an open transaction whose row locks
/// blocked the next run's lease renewals and writes. Store calls of the
/// run's abortable helper tasks now run in tasks of their own.)
#[test]
fn a_worker_goes_on_with_the_next_runs_after_cancels() {
    let env = Env::postgres();
    let items = 40;
    let api = ApiNode::start(&env, items);
    let worker = Worker::start(&env, "info", &["--run-lease", "1500ms"]);
    for cycle in 0..10 {
        let run = api.trigger(json!({"mode": "sleep", "ms": 500}));
        api.wait(&run, Duration::from_secs(60), |r| {
            r["status"] == "running" && r["succeededCount"].as_i64().unwrap() >= 1
        });
        let (status, body) = api.http.post(&format!("{run}/cancel"), &json!({}));
        assert_eq!(status, 200, "{body}");
        api.wait(&run, Duration::from_secs(15), |r| {
            r["status"] == "cancelled"
        });
        let next = api.trigger(json!({"mode": "echo"}));
        let done = api.wait(&next, Duration::from_secs(20), |r| {
            r["status"] == "completed"
        });
        assert_eq!(done["succeededCount"], items, "cycle {cycle}: {done}");
    }
    assert_eq!(worker.process.stop(), Some(0));
    assert_eq!(api.server.stop(), Some(0));
}
