//! Real `assay serve` and `assay worker` processes for the tests, and a
//! small blocking HTTP client with an API key.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Env;

/// A long-running `assay` process whose stderr is kept (for assertions on
/// its log). Killed on drop; [`Process::stop`] stops it gracefully.
pub struct Process {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Spawns `cmd` and waits until a line of its stderr contains `ready`;
    /// returns the process and that line. Panics with what it printed if it
    /// exits first.
    pub fn spawn(mut cmd: Command, ready: &str) -> (Self, String) {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let ready_line = loop {
            let Some(line) = lines.next() else {
                let status = child.wait().unwrap();
                panic!(
                    "the process exited ({status}) before printing {ready:?}:\n{}",
                    log.lock().unwrap().join("\n")
                );
            };
            let line = line.expect("stderr is text");
            log.lock().unwrap().push(line.clone());
            if line.contains(ready) {
                break line;
            }
        };
        // Keep draining stderr so the process never blocks on a full pipe.
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        (Self { child, log }, ready_line)
    }

    /// The stderr lines printed so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The stderr lines printed so far that are JSON objects
    /// (`--log-format json`).
    pub fn json_log(&self) -> Vec<Value> {
        self.log()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// Sends `signal` (`INT`, `TERM`) and waits for the exit code.
    pub fn signal_and_wait(mut self, signal: &str) -> Option<i32> {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
        self.child.wait().unwrap().code()
    }

    /// Ctrl-C (SIGINT) and the exit code.
    pub fn stop(self) -> Option<i32> {
        self.signal_and_wait("INT")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `assay serve` on a free port.
pub struct Server {
    pub process: Process,
    pub url: String,
}

impl Server {
    /// `assay serve --addr 127.0.0.1:0 --grace 2s` on the test's database.
    pub fn start(env: &Env) -> Self {
        Self::start_with(env, &[])
    }

    /// [`Server::start`] with more arguments.
    pub fn start_with(env: &Env, extra: &[&str]) -> Self {
        let mut cmd = env.std_cmd();
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--grace", "2s"])
            .args(extra);
        Self::spawn(cmd)
    }

    /// Spawns an `assay serve` command line and waits for its address.
    pub fn spawn(cmd: Command) -> Self {
        let (process, line) = Process::spawn(cmd, "listening on ");
        let rest = line.split("listening on ").nth(1).unwrap();
        let url = rest.split_whitespace().next().unwrap().to_string();
        Self { process, url }
    }

    /// Ctrl-C and the exit code.
    pub fn stop(self) -> Option<i32> {
        self.process.stop()
    }
}

/// `assay worker` on the test's database.
pub struct Worker {
    pub process: Process,
    /// The lease owner id it executes runs as (`host-<uuid>`).
    pub owner: String,
}

impl Worker {
    /// `assay worker ARGS` with the log level `ASSAY_LOG=log`, started once
    /// it says it executes runs.
    pub fn start(env: &Env, log: &str, args: &[&str]) -> Self {
        let mut cmd = env.std_cmd();
        cmd.env("ASSAY_LOG", log).arg("worker").args(args);
        let (process, line) = Process::spawn(cmd, "assay worker: executing runs");
        let owner = line
            .split(" as ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or_else(|| panic!("no owner id in {line:?}"))
            .to_string();
        Self { process, owner }
    }
}

/// A tiny blocking HTTP client for the tests, with an API key.
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    token: String,
}

impl Http {
    pub fn new(token: &str) -> Self {
        Self {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::new(),
            token: token.to_string(),
        }
    }

    pub fn get_status(&self, url: &str) -> (u16, Value) {
        self.rt.block_on(async {
            let response = self
                .client
                .get(url)
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap())
        })
    }

    pub fn get(&self, url: &str) -> Value {
        let (status, body) = self.get_status(url);
        assert_eq!(status, 200, "{url}: {body}");
        body
    }

    pub fn post(&self, url: &str, body: &Value) -> (u16, Value) {
        self.rt.block_on(async {
            let response = self
                .client
                .post(url)
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap())
        })
    }

    /// GETs `url` every 50 ms until `done` holds for the answer; panics
    /// with the last answer after `within`.
    pub fn poll_until(&self, url: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let body = self.get(url);
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{url} after {within:?}: {body}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
