//! A real server on a loopback port, with a temp SQLite database, and a
//! small JSON client for it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assay_api::{AuthMode, RunningServer, ServeConfig};
use assay_runner::AssemblySettings;
use assay_store::tenancy::issue_api_key;
use assay_store::{DEFAULT_TENANT, Role, TenantLimits};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A compiled-plugin cache shared by every server of this test process.
fn plugin_cache() -> &'static std::path::Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

pub struct TestServer {
    server: Option<RunningServer>,
    pub base: String,
    pub client: reqwest::Client,
    /// Sent as `Authorization: Bearer` when set (an admin key of `default`
    /// from the start; see [`TestServer::act_as`]).
    pub token: Option<String>,
    pub dir: TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, tweak).await
    }

    /// A server on the database in `dir` (a second server on the same
    /// database resumes the first one's runs).
    pub async fn start_in(dir: TempDir, tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        let mut config = ServeConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            assembly: AssemblySettings {
                database_url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("assay.db").display()
                ),
                cache_dir: Some(plugin_cache().to_path_buf()),
                ..AssemblySettings::default()
            },
            grace: Duration::from_secs(5),
            sse_poll_interval: Duration::from_millis(50),
            auth: AuthMode::Keys,
            secret_key: Some(assay_runner::SecretKey::random()),
            ..ServeConfig::default()
        };
        tweak(&mut config);
        let server = assay_api::start(config).await.expect("server starts");
        let mut s = Self {
            base: server.url(),
            server: Some(server),
            client: reqwest::Client::new(),
            token: None,
            dir,
        };
        if s.state().options().auth != AuthMode::Disabled {
            s.act_as(DEFAULT_TENANT).await;
        }
        s
    }

    /// A new key of `tenant` with `role` (the tenant is created first if
    /// it does not exist); returns its token.
    pub async fn key(&self, tenant: &str, role: Role) -> String {
        let store = self.state().store();
        if let Err(e) = store.tenant_limits(tenant).await {
            assert!(e.is_not_found(), "{e}");
            store
                .create_tenant(tenant, &TenantLimits::default())
                .await
                .expect("tenant created");
        }
        let (_, token) = issue_api_key(store.as_ref(), tenant, role, None)
            .await
            .expect("key created");
        token
    }

    /// From now on, requests carry a new admin key of `tenant`.
    pub async fn act_as(&mut self, tenant: &str) {
        self.token = Some(self.key(tenant, Role::Admin).await);
    }

    /// Where the server serves `/metrics` (when asked for).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().expect("running").metrics_addr()
    }

    /// The server's shared state (store, scheduler).
    pub fn state(&self) -> &assay_api::AppState {
        self.server.as_ref().expect("running").state()
    }

    /// Stops the server gracefully and hands back its database directory.
    pub async fn stop(mut self) -> TempDir {
        self.server
            .take()
            .expect("running")
            .shutdown()
            .await
            .expect("clean shutdown");
        self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, self.url(path));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = rb.send().await.expect("request is answered");
        let status = resp.status();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            assert!(
                ct.starts_with("application/json"),
                "{status}: expected JSON, got `{ct}`: {text}"
            );
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"))
        };
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::POST, path).json(&body))
            .await
    }

    pub async fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::POST, path)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::PATCH, path).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::PUT, path).json(&body))
            .await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    pub async fn delete_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.request(reqwest::Method::DELETE, path).json(&body))
            .await
    }

    /// Uploads workspace plugin `name` (built by assay-test-support).
    pub async fn upload_plugin(&self, name: &str) -> Value {
        let bytes = std::fs::read(assay_test_support::plugin_wasm(name)).expect("plugin built");
        let (status, body) = self
            .send(
                self.request(reqwest::Method::POST, "/api/plugins")
                    .header("content-type", "application/wasm")
                    .body(bytes),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Creates a dataset holding `items` (bulk add); returns its id.
    pub async fn dataset_with_items(&self, name: &str, items: Vec<Value>) -> String {
        let (status, ds) = self.post("/api/datasets", json!({ "name": name })).await;
        assert_eq!(status, StatusCode::CREATED, "{ds}");
        let id = ds["id"].as_str().unwrap().to_string();
        if !items.is_empty() {
            let (status, body) = self
                .post(
                    &format!("/api/datasets/{id}/items/bulk"),
                    json!({ "items": items }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        id
    }

    /// Polls a run like a playground (every `every`) until it finishes;
    /// returns every run body seen, in order.
    pub async fn poll_run(
        &self,
        dataset: &str,
        run: &str,
        every: Duration,
        limit: Duration,
    ) -> Vec<Value> {
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let (status, body) = self
                .get(&format!("/api/datasets/{dataset}/runs/{run}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let done = matches!(
                body["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            );
            seen.push(body);
            if done {
                return seen;
            }
            assert!(
                start.elapsed() < limit,
                "run {run} did not finish in {limit:?}: {:?}",
                seen.last()
            );
            tokio::time::sleep(every).await;
        }
    }

    /// Every result of a run, page by page (`per_page` each).
    pub async fn all_results(&self, dataset: &str, run: &str, per_page: u32) -> Vec<Value> {
        let mut out = Vec::new();
        for page in 0.. {
            let (status, body) = self
                .get(&format!(
                    "/api/datasets/{dataset}/runs/{run}/results?page={page}&perPage={per_page}"
                ))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let rows = body["results"].as_array().unwrap();
            assert!(rows.len() <= per_page as usize);
            out.extend(rows.iter().cloned());
            assert_eq!(body["pagination"]["page"], page);
            assert_eq!(body["pagination"]["perPage"], per_page);
            if !body["pagination"]["hasMore"].as_bool().unwrap() {
                assert_eq!(body["pagination"]["total"], out.len());
                break;
            }
        }
        out
    }
}

/// Asserts `body` is an error with `status` and `code`; returns its message.
pub fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) -> String {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {body}"));
    assert!(!message.is_empty());
    message.to_string()
}
