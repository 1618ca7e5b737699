//! One run executed by three `assay serve` processes sharing a PostgreSQL
//! database: every process takes chunks of the run's items, the run ends
//! with exactly one result per item even when one process is killed, and a
//! cancel sent to one process stops the items of all of them.
//!
//! The target sleeps 10 ms per item (the `hostile-target` fixture in
//! `sleep` mode); each process counts the items it executed in its
//! Prometheus metrics (`assay_items_total`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use assay_test_support::postgres::fresh_postgres_database;
use common::Env;
use serde_json::{Value, json};

const ITEMS: usize = 30_000;

/// `assay serve` on the shared database, on free ports, with its metrics.
struct Node {
    child: Child,
    url: String,
    metrics: String,
}

impl Node {
    fn start(env: &Env, database: &str) -> Self {
        let mut child = env
            .std_cmd()
            .env("ASSAY_DATABASE_URL", database)
            .args(["serve", "--no-auth", "--addr", "127.0.0.1:0"])
            .args(["--metrics-addr", "127.0.0.1:0", "--grace", "2s"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut url, mut metrics) = (None, None);
        while url.is_none() || metrics.is_none() {
            let line = lines.next().expect("serve printed its addresses").unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                url = Some(rest.split_whitespace().next().unwrap().to_string());
            }
            if let Some(rest) = line.split("metrics at ").nth(1) {
                metrics = Some(rest.trim().to_string());
            }
        }
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            url: url.unwrap(),
            metrics: metrics.unwrap(),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP client.
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::new(),
        }
    }

    fn send(&self, request: reqwest::RequestBuilder) -> (u16, String) {
        self.rt.block_on(async {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    }

    fn get(&self, url: &str) -> Value {
        let (status, body) = self.send(self.client.get(url));
        assert_eq!(status, 200, "{url}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn post(&self, url: &str, body: &Value) -> (u16, Value) {
        let (status, text) = self.send(self.client.post(url).json(body));
        (status, serde_json::from_str(&text).unwrap())
    }

    /// The items a node executed, from its metrics.
    fn items_executed(&self, node: &Node) -> u64 {
        let (status, text) = self.send(self.client.get(&node.metrics));
        assert_eq!(status, 200);
        text.lines()
            .filter(|line| line.starts_with("assay_items_total{"))
            .map(|line| {
                let value = line.rsplit(' ').next().unwrap();
                value.parse::<f64>().unwrap() as u64
            })
            .sum()
    }
}

/// The plugin registered and a dataset of `ITEMS` items imported, through
/// the CLI on the shared database; returns the dataset id.
fn dataset(env: &Env, database: &str) -> String {
    env.cmd()
        .env("ASSAY_DATABASE_URL", database)
        .args(["plugin", "add"])
        .arg(assay_test_support::plugin_wasm("hostile-target"))
        .assert()
        .success();
    let lines: String = (0..ITEMS)
        .map(|i| format!("{{\"input\": {{\"n\": {i}}}}}\n"))
        .collect();
    let file = env.write("items.jsonl", &lines);
    let out = env
        .cmd()
        .env("ASSAY_DATABASE_URL", database)
        .args(["dataset", "import"])
        .arg(&file)
        .args(["--name", "shared", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let imported: Value = serde_json::from_slice(&out).unwrap();
    imported["dataset"]["id"].as_str().unwrap().to_string()
}

/// Triggers the run on `node`: the target sleeps 10 ms per item.
fn trigger(http: &Http, node: &Node, dataset: &str) -> String {
    let (status, body) = http.post(
        &format!("{}/api/datasets/{dataset}/runs", node.url),
        &json!({
            "targetType": "plugin",
            "targetId": "hostile-target",
            "targetConfig": {"mode": "sleep", "ms": 10},
            "scorerIds": [],
            "maxConcurrency": 8,
        }),
    );
    assert_eq!(status, 202, "{body}");
    body["runId"].as_str().unwrap().to_string()
}

fn run_url(node: &Node, dataset: &str, run: &str) -> String {
    format!("{}/api/datasets/{dataset}/runs/{run}", node.url)
}

/// Polls the run on `node` until `done` says so (or panics after `limit`).
fn wait_for(http: &Http, url: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let run = http.get(url);
        if done(&run) {
            return run;
        }
        assert!(started.elapsed() < limit, "gave up waiting: {run}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Results stored for the run (the list's total).
fn results_stored(http: &Http, run_url: &str) -> u64 {
    http.get(&format!("{run_url}/results?perPage=1"))["pagination"]["total"]
        .as_u64()
        .unwrap()
}

fn finished(run: &Value) -> bool {
    matches!(
        run["status"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

/// Three nodes on a fresh database, the run triggered on the first.
struct Started {
    _env: Env,
    nodes: Vec<Node>,
    http: Http,
    dataset: String,
    run: String,
    /// The run, on the first node.
    url: String,
}

fn three_nodes_running_a_run() -> Started {
    let env = Env::new();
    let database = fresh_postgres_database();
    let dataset = dataset(&env, &database);
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&env, &database)).collect();
    let http = Http::new();
    let run = trigger(&http, &nodes[0], &dataset);
    let url = run_url(&nodes[0], &dataset, &run);
    Started {
        _env: env,
        nodes,
        http,
        dataset,
        run,
        url,
    }
}

#[test]
fn three_processes_share_one_run_each_executing_a_part() {
    let Started {
        nodes, http, url, ..
    } = three_nodes_running_a_run();
    let done = wait_for(&http, &url, Duration::from_secs(240), finished);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["succeededCount"], ITEMS, "{done}");
    assert_eq!(results_stored(&http, &url), ITEMS as u64);
    let executed: Vec<u64> = nodes.iter().map(|n| http.items_executed(n)).collect();
    assert_eq!(executed.iter().sum::<u64>(), ITEMS as u64, "{executed:?}");
    for part in &executed {
        assert!(
            *part >= ITEMS as u64 / 5,
            "every process executes at least a fifth: {executed:?}"
        );
    }
}

#[test]
fn a_process_killed_mid_run_loses_no_item_and_duplicates_none() {
    let Started {
        mut nodes,
        http,
        url,
        ..
    } = three_nodes_running_a_run();
    // Once the last node took part, it is killed without warning.
    let last = nodes.last().unwrap();
    let started = Instant::now();
    while http.items_executed(last) < 1_000 {
        assert!(started.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut killed = nodes.pop().unwrap();
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    let done = wait_for(&http, &url, Duration::from_secs(240), finished);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["succeededCount"], ITEMS, "{done}");
    assert_eq!(done["skippedCount"], 0, "{done}");
    assert_eq!(results_stored(&http, &url), ITEMS as u64);
}

#[test]
fn cancel_on_one_process_stops_the_items_of_all() {
    let Started {
        nodes,
        http,
        dataset,
        run,
        url,
        ..
    } = three_nodes_running_a_run();
    let started = Instant::now();
    while nodes.iter().any(|n| http.items_executed(n) < 200) {
        assert!(started.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Cancelled through another process than the one it was triggered on.
    let (status, body) = http.post(
        &format!("{}/cancel", run_url(&nodes[1], &dataset, &run)),
        &json!({}),
    );
    assert_eq!(status, 200, "{body}");
    let done = wait_for(&http, &url, Duration::from_secs(30), finished);
    assert_eq!(done["status"], "cancelled", "{done}");
    // Every process stops executing the run's items soon after.
    std::thread::sleep(Duration::from_secs(2));
    let before: Vec<u64> = nodes.iter().map(|n| http.items_executed(n)).collect();
    let stored = results_stored(&http, &url);
    std::thread::sleep(Duration::from_secs(2));
    let after: Vec<u64> = nodes.iter().map(|n| http.items_executed(n)).collect();
    assert_eq!(
        before, after,
        "no process executes items of the cancelled run"
    );
    assert_eq!(results_stored(&http, &url), stored);
    assert!(stored < ITEMS as u64);
    let counted = done["succeededCount"].as_u64().unwrap() + done["failedCount"].as_u64().unwrap();
    assert_eq!(counted, stored, "{done}");
}
