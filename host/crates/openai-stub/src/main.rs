//! `openai-stub`: the OpenAI-compatible test server as a process, for
//! benchmarks that drive `assay run` or `assay serve` against it.
//!
//! ```text
//! openai-stub --addr 127.0.0.1:8089 --latency-ms 50 [--max-in-flight 32 --retry-after 1]
//! ```
//!
//! Prints `listening on http://ADDR` on stdout, then serves until killed;
//! `GET /stub/stats` gives its counters.

use std::net::SocketAddr;
use std::time::Duration;

use assay_openai_stub::{Stub, StubConfig};
use clap::Parser;

#[derive(Parser)]
#[command(about = "A local OpenAI-compatible server for tests and benchmarks")]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Milliseconds before each answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Answer 429 to requests above this many in flight.
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// `Retry-After` seconds on 429s.
    #[arg(long)]
    retry_after: Option<u64>,
    /// Fail the first N requests.
    #[arg(long, default_value_t = 0)]
    fail_first: u64,
    /// Status of those failures.
    #[arg(long)]
    fail_status: Option<u16>,
    /// Require `Authorization: Bearer KEY`.
    #[arg(long)]
    api_key: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let stub = Stub::start_on(
        args.addr,
        StubConfig {
            latency: Duration::from_millis(args.latency_ms),
            max_in_flight: args.max_in_flight,
            retry_after_secs: args.retry_after,
            fail_first: args.fail_first,
            fail_status: args.fail_status,
            api_key: args.api_key,
        },
    )
    .await?;
    println!("listening on {}", stub.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
