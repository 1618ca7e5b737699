//! SQLite specifics: in-memory databases, the URL forms, and several
//! processes (here: several stores) sharing one file.

use std::sync::Arc;
use std::time::Duration;

use assay_store::*;
use chrono::Utc;
use serde_json::json;

const T: &str = DEFAULT_TENANT;

fn file_url(dir: &tempfile::TempDir) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("shared.db").display()
    )
}

async fn dataset_and_run(s: &Arc<dyn Store>, n: usize) -> (Vec<DatasetItem>, Run) {
    let ds = s
        .create_dataset(
            T,
            NewDataset {
                name: format!("ds-{}", uuid_like()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let items = s
        .add_items(
            T,
            &ds.id,
            (0..n)
                .map(|i| NewItem {
                    input: json!(i),
                    expected_output: None,
                    context: None,
                })
                .collect(),
        )
        .await
        .unwrap();
    let run = s
        .create_run(
            T,
            NewRun {
                id: None,
                dataset_id: ds.id.clone(),
                dataset_version: 1,
                target_type: TargetType::Plugin,
                target_id: "t".into(),
                scorer_ids: vec![],
                config: json!({}),
                total_items: n as i64,
                repeats: 1,
                parent_run_id: None,
            },
        )
        .await
        .unwrap();
    (items, run)
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn result(item: &DatasetItem, index: i64) -> NewResult {
    NewResult {
        item_id: item.id.clone(),
        item_index: index,
        trial: 0,
        item_version: item.version,
        input: item.input.clone(),
        output: Some(json!("ok")),
        expected_output: None,
        latency: 0.5,
        error: None,
        error_kind: None,
        started_at: Utc::now(),
        completed_at: Utc::now(),
        retry_count: 0,
        trace_id: None,
        target_metadata: None,
        logs: None,
        scores: vec![],
    }
}

#[tokio::test]
async fn in_memory_databases_are_separate_and_complete() {
    let a = connect("sqlite::memory:").await.unwrap();
    let b = connect("sqlite::memory:").await.unwrap();
    assert_eq!(a.backend(), "sqlite");
    let (_, run) = dataset_and_run(&a, 3).await;
    assert_eq!(a.list_datasets(T, Page::default()).await.unwrap().total, 1);
    assert_eq!(b.list_datasets(T, Page::default()).await.unwrap().total, 0);
    let (_, claimed) = a
        .claim_next_run("o", Duration::from_secs(30), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, run.id);
}

#[tokio::test]
async fn a_file_url_without_mode_creates_the_file_and_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/assay.db");
    let s = connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    s.create_dataset(
        T,
        NewDataset {
            name: "x".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(path.is_file());
}

/// The database holds key hashes and every tenant's data: a file (and its
/// WAL) that assay creates is its owner's only, whichever URL form made it.
#[cfg(unix)]
#[tokio::test]
async fn a_database_file_assay_creates_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    for (name, url) in [
        (
            "bare",
            format!("sqlite://{}", dir.path().join("new/bare.db").display()),
        ),
        (
            "rwc",
            format!("sqlite://{}?mode=rwc", dir.path().join("rwc.db").display()),
        ),
    ] {
        let s = connect(&url).await.unwrap();
        s.create_dataset(
            T,
            NewDataset {
                name: "x".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let db = dir.path().join(if name == "bare" {
            "new/bare.db"
        } else {
            "rwc.db"
        });
        assert_eq!(mode(&db), 0o600, "{name}: database file");
        let wal = db.with_extension("db-wal");
        assert!(
            wal.exists(),
            "{name}: the WAL should exist while the store is open"
        );
        assert_eq!(mode(&wal), 0o600, "{name}: WAL file");
    }
    assert_eq!(mode(&dir.path().join("new")), 0o700);
}

#[tokio::test]
async fn unknown_schemes_are_refused() {
    match connect("mysql://localhost/db").await {
        Err(StoreError::Config(msg)) => assert!(msg.contains("mysql://")),
        Err(other) => panic!("expected a Config error, got {other:?}"),
        Ok(_) => panic!("expected a Config error, got a store"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_process_finishes_only_the_missing_items() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&dir);
    let (items, run_id) = {
        let first = connect(&url).await.unwrap();
        let (items, run) = dataset_and_run(&first, 5).await;
        let run = first
            .claim_run(T, &run.id, "crashed", Duration::from_millis(50))
            .await
            .unwrap();
        let done: Vec<NewResult> = [0usize, 1, 3]
            .iter()
            .map(|&i| result(&items[i], i as i64))
            .collect();
        first
            .write_results(&run.id, &Claim::of("crashed", &run), done)
            .await
            .unwrap();
        // The process "dies": no release, no finish.
        (items, run.id)
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = connect(&url).await.unwrap();
    let (_, resumed) = second
        .claim_next_run("restarted", Duration::from_secs(30), &[])
        .await
        .unwrap()
        .expect("the interrupted run is found");
    assert_eq!(resumed.id, run_id);
    let todo = second.pending_items(T, &run_id, None, 100).await.unwrap();
    assert_eq!(
        todo.iter().map(|i| &i.id).collect::<Vec<_>>(),
        [&items[2].id, &items[4].id]
    );
    let rest: Vec<NewResult> = todo.iter().map(|i| result(i, i.position)).collect();
    second
        .write_results(&run_id, &Claim::of("restarted", &resumed), rest)
        .await
        .unwrap();
    let done = second
        .finish_run(
            &run_id,
            &Claim::of("restarted", &resumed),
            RunStatus::Completed,
            None,
        )
        .await
        .unwrap();
    assert_eq!((done.succeeded_count, done.skipped_count), (5, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_readers_on_one_file_do_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&dir);
    let a = connect(&url).await.unwrap();
    let b = connect(&url).await.unwrap();
    let (items_a, run_a) = dataset_and_run(&a, 200).await;
    let (items_b, run_b) = dataset_and_run(&b, 200).await;
    let run_a = a
        .claim_run(T, &run_a.id, "a", Duration::from_secs(30))
        .await
        .unwrap();
    let run_b = b
        .claim_run(T, &run_b.id, "b", Duration::from_secs(30))
        .await
        .unwrap();
    let writer = |s: Arc<dyn Store>, items: Vec<DatasetItem>, run: Run, owner: &'static str| {
        tokio::spawn(async move {
            let claim = Claim::of(owner, &run);
            for (i, it) in items.iter().enumerate() {
                s.write_results(&run.id, &claim, vec![result(it, i as i64)])
                    .await
                    .unwrap();
            }
        })
    };
    let reader = |s: Arc<dyn Store>, run: String| {
        tokio::spawn(async move {
            for _ in 0..50 {
                s.list_results(T, &run, Page::new(0, 100)).await.unwrap();
                s.get_run(T, &run).await.unwrap();
            }
        })
    };
    let handles = vec![
        writer(a.clone(), items_a, run_a.clone(), "a"),
        writer(b.clone(), items_b, run_b.clone(), "b"),
        reader(a.clone(), run_b.id.clone()),
        reader(b.clone(), run_a.id.clone()),
    ];
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(a.get_run(T, &run_b.id).await.unwrap().succeeded_count, 200);
    assert_eq!(b.get_run(T, &run_a.id).await.unwrap().succeeded_count, 200);
}

/// Several processes opening one new database file at once (here: several
/// stores) take turns at the migrations: each sees the schema complete, none
/// fails on a half-applied migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_opens_take_turns_at_the_migrations() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = file_url(&dir);
        let opens = (0..4).map(|_| SqliteStore::connect(&url));
        for (i, store) in futures::future::join_all(opens)
            .await
            .into_iter()
            .enumerate()
        {
            let store = store.unwrap_or_else(|e| panic!("open {i} failed: {e}"));
            let s: Arc<dyn Store> = Arc::new(store);
            s.tenant_usage(T).await.expect("the schema is complete");
        }
    }
}

/// Renews `claim`'s lease over and over until `busy` ends; returns how
/// many renewals completed while it still ran.
async fn renewals_during<T: Send + 'static>(
    s: &Arc<dyn Store>,
    run: &Run,
    claim: &Claim,
    busy: tokio::task::JoinHandle<T>,
) -> (usize, T) {
    // Let `busy` start (and, before validation moved out, take the lock).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut renewed = 0;
    while !busy.is_finished() {
        s.renew_lease(&run.id, claim, Duration::from_secs(30))
            .await
            .unwrap();
        if !busy.is_finished() {
            renewed += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (renewed, busy.await.unwrap())
}

/// One tenant adds 100k items to a dataset with a schema, then changes
/// the schema (every item re-validated). Validation runs before the write
/// lock and off the runtime, so another run's lease renewals (writes)
/// keep passing meanwhile instead of waiting for the whole add.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validating_a_large_add_or_schema_change_does_not_hold_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let s = connect(&file_url(&dir)).await.unwrap();
    let (_, run) = dataset_and_run(&s, 1).await;
    let run = s
        .claim_run(T, &run.id, "other-run", Duration::from_secs(30))
        .await
        .unwrap();
    let claim = Claim::of("other-run", &run);
    let schema = json!({
        "type": "object",
        "required": ["question", "tags"],
        "properties": {
            "question": {"type": "string", "minLength": 1, "pattern": "^Question [0-9]+$"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8}
        }
    });
    let ds = s
        .create_dataset(
            T,
            NewDataset {
                name: "large".into(),
                input_schema: Some(schema.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let items: Vec<NewItem> = (0..validate::MAX_ITEMS_PER_REQUEST)
        .map(|i| NewItem {
            input: json!({"question": format!("Question {i}"), "tags": ["a", "b", "c"]}),
            expected_output: None,
            context: None,
        })
        .collect();
    let add = tokio::spawn({
        let (s, id) = (s.clone(), ds.id.clone());
        async move { s.add_items(T, &id, items).await.map(|a| a.len()) }
    });
    let (renewed, added) = renewals_during(&s, &run, &claim, add).await;
    assert_eq!(added.unwrap(), validate::MAX_ITEMS_PER_REQUEST);
    assert!(renewed > 0, "no lease renewal passed during the add");

    let mut stricter = schema;
    stricter["properties"]["tags"]["maxItems"] = json!(4);
    let change = tokio::spawn({
        let (s, id) = (s.clone(), ds.id.clone());
        async move {
            let patch = DatasetPatch {
                input_schema: Some(Some(stricter)),
                ..Default::default()
            };
            s.update_dataset(T, &id, patch).await
        }
    });
    let (renewed, changed) = renewals_during(&s, &run, &claim, change).await;
    assert_eq!(changed.unwrap().version, 2);
    assert!(
        renewed > 0,
        "no lease renewal passed during the schema change"
    );
}

/// A database that has results from before repeats (every migration below
/// 0010 applied, rows written at that schema) is migrated in place: the
/// results and scores become trial 0 of their item and keep their sequence
/// numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_to_repeats_keeps_stored_results_as_trial_zero() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(&dir);
    let before = tempfile::tempdir().unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../migrations/sqlite");
    for entry in std::fs::read_dir(&all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let version: u32 = name.split('_').next().unwrap().parse().unwrap();
        if version < 10 {
            std::fs::copy(&path, before.path().join(&name)).unwrap();
        }
    }
    {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(before.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        sqlx::raw_sql(
            "INSERT INTO datasets (id, tenant_id, name, version, item_count, next_position, \
               created_at, updated_at) VALUES ('d', 'default', 'old', 1, 1, 1, 0, 0);
             INSERT INTO item_versions (item_id, version_number, dataset_id, position, \
               valid_from, input, item_created_at, created_at) \
               VALUES ('i', 1, 'd', 0, 1, '{\"q\": 1}', 0, 0);
             INSERT INTO runs (id, tenant_id, dataset_id, dataset_version, target_type, \
               target_id, scorer_ids, status, total_items, succeeded_count, config, \
               created_at, updated_at) VALUES ('r', 'default', 'd', 1, 'plugin', 'echo', \
               '[\"exact\"]', 'running', 1, 1, '{}', 0, 0);
             INSERT INTO results (seq, id, run_id, item_id, item_index, item_version, input, \
               output, latency, started_at, completed_at, retry_count, created_at) \
               VALUES (41, 'res', 'r', 'i', 0, 1, '{\"q\": 1}', '\"a\"', 2.0, 0, 0, 0, 0);
             INSERT INTO scores (run_id, item_id, scorer_id, ord, scorer_name, score) \
               VALUES ('r', 'i', 'exact', 0, 'Exact', 0.75);",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }

    let store = connect(&url).await.unwrap();
    let run = store.get_run(T, "r").await.unwrap();
    assert_eq!((run.repeats, run.total_items), (1, 1));
    let kept = store.results_after_seq(T, "r", 0, 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    let (seq, result) = &kept[0];
    assert_eq!((*seq, result.item_id.as_str(), result.trial), (41, "i", 0));
    assert_eq!(result.output, Some(json!("a")));
    assert_eq!(result.scores.len(), 1);
    assert_eq!(result.scores[0].score, Some(0.75));
}
