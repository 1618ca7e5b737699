//! Storage throughput on both backends; prints figures.
//!
//! `cargo bench -p assay-store` (PostgreSQL: a throwaway local server, or
//! `ASSAY_TEST_DATABASE_URL`). Sizes scale with `ASSAY_BENCH_SCALE`
//! (default 1).

use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_store::*;
use chrono::Utc;
use serde_json::json;

const T: &str = DEFAULT_TENANT;

fn scale() -> usize {
    std::env::var("ASSAY_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn item(i: usize) -> NewItem {
    NewItem {
        input: json!({"question": format!("What is {i} + {i}?"), "id": i}),
        expected_output: Some(json!({"answer": i * 2})),
        context: None,
    }
}

fn result(it: &DatasetItem) -> NewResult {
    let now = Utc::now();
    NewResult {
        item_id: it.id.clone(),
        item_index: it.position,
        trial: 0,
        item_version: it.version,
        input: it.input.clone(),
        output: Some(json!({"answer": 1})),
        expected_output: it.expected_output.clone(),
        latency: 0.3,
        error: None,
        error_kind: None,
        started_at: now,
        completed_at: now,
        retry_count: 0,
        trace_id: None,
        target_metadata: None,
        logs: None,
        scores: (0..3)
            .map(|k| ScoreRow {
                scorer_id: format!("scorer-{k}"),
                scorer_name: format!("Scorer {k}"),
                score: Some(1.0),
                reason: None,
                error: None,
                metadata: None,
            })
            .collect(),
    }
}

async fn dataset(s: &Arc<dyn Store>, name: &str, n: usize) -> (Dataset, Duration) {
    let ds = s
        .create_dataset(
            T,
            NewDataset {
                name: name.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let start = Instant::now();
    s.add_items(T, &ds.id, (0..n).map(item).collect())
        .await
        .unwrap();
    let took = start.elapsed();
    (s.get_dataset(T, &ds.id).await.unwrap(), took)
}

async fn all_pending(s: &Arc<dyn Store>, run: &str) -> (Vec<DatasetItem>, Duration) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = s.pending_items(T, run, after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.position);
        out.extend(page);
    }
    (out, start.elapsed())
}

fn new_run(ds: &Dataset) -> NewRun {
    NewRun {
        id: None,
        dataset_id: ds.id.clone(),
        dataset_version: ds.version,
        target_type: TargetType::Plugin,
        target_id: "t".into(),
        scorer_ids: vec![],
        config: json!({}),
        total_items: ds.item_count,
        repeats: 1,
        parent_run_id: None,
    }
}

async fn bench(label: &str, s: Arc<dyn Store>) {
    let n = 100_000 * scale();
    let (ds, took) = dataset(&s, "big", n).await;
    println!(
        "{label:<8} add_items: {n} items in one call: {:.2} s ({:.0} items/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );

    // Trigger cost on a large dataset: count + create_run.
    let mut lat = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let total = s
            .count_items_at_version(T, &ds.id, ds.version)
            .await
            .unwrap();
        let mut nr = new_run(&ds);
        nr.total_items = total;
        let run = s.create_run(T, nr).await.unwrap();
        lat.push(start.elapsed());
        s.request_cancel(T, &run.id).await.unwrap();
    }
    lat.sort();
    println!(
        "{label:<8} trigger (count + create_run) on {n} items: p50 {:.2} ms, p99 {:.2} ms",
        lat[lat.len() / 2].as_secs_f64() * 1e3,
        lat[lat.len() * 99 / 100].as_secs_f64() * 1e3
    );

    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    let run = s
        .claim_run(T, &run.id, "bench", Duration::from_secs(600))
        .await
        .unwrap();
    let (items, took) = all_pending(&s, &run.id).await;
    println!(
        "{label:<8} pending_items: {} items in pages of 1000: {:.0} items/s",
        items.len(),
        items.len() as f64 / took.as_secs_f64()
    );

    let mut offset = 0;
    for (batch, count) in [(1usize, 3_000usize), (64, 30_000)] {
        let count = count * scale();
        let slice = &items[offset..offset + count];
        offset += count;
        let start = Instant::now();
        for chunk in slice.chunks(batch) {
            s.write_results(
                &run.id,
                &Claim::of("bench", &run),
                chunk.iter().map(result).collect(),
            )
            .await
            .unwrap();
        }
        let took = start.elapsed();
        println!(
            "{label:<8} write_results (3 scores each), batch {batch:>3}: {count} results in {:.2} s = {:.0} results/s",
            took.as_secs_f64(),
            count as f64 / took.as_secs_f64()
        );
    }
    let (rest, took) = all_pending(&s, &run.id).await;
    println!(
        "{label:<8} pending_items after {offset} results: {} items in {:.2} s",
        rest.len(),
        took.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs with no
    // arguments: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        bench("sqlite", connect(&url).await.unwrap()).await;
        let pg = assay_test_support::postgres::fresh_postgres_database();
        bench("postgres", connect(&pg).await.unwrap()).await;
    });
}
