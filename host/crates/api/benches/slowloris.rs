//! Slowloris against `assay serve`, in one process over loopback: idle
//! connections (connected, sending nothing) and slow ones (a request head
//! trickled one header every second) are held while `/health` is timed on
//! a new connection each time.
//!
//! Two cases: the connection cap above what is held (the timeouts alone
//! keep the server answering), and a cap far below it (idle connections
//! are closed to make room).
//!
//! `cargo bench -p assay-api --bench slowloris`. Knobs (environment):
//! `ASSAY_BENCH_IDLE` (4000 idle), `ASSAY_BENCH_SLOW` (1000 slow),
//! `ASSAY_BENCH_HEALTH` (500 `/health` requests), `ASSAY_BENCH_CAP` (1024,
//! the low cap of the second case).

use std::time::{Duration, Instant};

use assay_api::{AuthMode, ServeConfig, ServerLimits};
use assay_runner::AssemblySettings;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn case(label: &str, max_connections: usize, idle: u64, slow: u64, health: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = ServeConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        assembly: AssemblySettings {
            database_url: format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            ),
            cache_dir: Some(dir.path().join("cache")),
            ..AssemblySettings::default()
        },
        grace: Duration::from_millis(500),
        auth: AuthMode::Keys,
        limits: ServerLimits {
            max_connections,
            ..ServerLimits::default()
        },
        ..ServeConfig::default()
    };
    let server = assay_api::start(config).await.expect("server starts");
    let addr = server.local_addr();
    let mut held = Vec::new();
    let mut failed = 0;
    for i in 0..idle + slow {
        match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await {
            Ok(Ok(mut s)) => {
                if i >= idle {
                    let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
                }
                held.push(s);
            }
            _ => failed += 1,
        }
    }
    // The slow ones keep trickling headers while /health is timed.
    let stop = tokio_util::sync::CancellationToken::new();
    let trickle = {
        let stop = stop.clone();
        let mut slow: Vec<TcpStream> = held.split_off(idle as usize);
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                for s in &mut slow {
                    let _ = s.write_all(b"x-slow: 1\r\n").await;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("http://{addr}/health");
    let mut samples = Vec::new();
    let mut errors = 0;
    for _ in 0..health {
        let t = Instant::now();
        match client.get(&url).send().await {
            Ok(r) if r.status() == 200 => samples.push(t.elapsed()),
            _ => errors += 1,
        }
    }
    samples.sort();
    println!(
        "{label}: cap={} held {} idle + {} slow (connects failed: {failed}); /health n={} errors={errors} p50={} p99={} max={}",
        assay_api::conn::effective_max_connections(max_connections),
        idle,
        slow,
        samples.len(),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 99.0)),
        ms(*samples.last().unwrap()),
    );
    stop.cancel();
    let _ = trickle.await;
    drop(held);
    server.shutdown().await.expect("shutdown");
}

fn main() {
    let idle = env_or("ASSAY_BENCH_IDLE", 4000);
    let slow = env_or("ASSAY_BENCH_SLOW", 1000);
    let health = env_or("ASSAY_BENCH_HEALTH", 500);
    let cap = env_or("ASSAY_BENCH_CAP", 1024) as usize;
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("open-file limit");
    println!("open-file limit of the process: {limit}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        case(
            "cap above the load",
            ServerLimits::default().max_connections,
            idle,
            slow,
            health,
        )
        .await;
        case("cap below the load", cap, idle, slow, health).await;
    });
}
