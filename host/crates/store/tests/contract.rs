//! The storage contract: every test runs against SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `assay_test_support::postgres` (a throwaway server
//! started once per test process, a fresh database per test, or
//! `ASSAY_TEST_DATABASE_URL`); missing server binaries fail the tests.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use assay_store::*;
use chrono::Utc;
use serde_json::{Value, json};

const T: &str = DEFAULT_TENANT;
const LEASE: Duration = Duration::from_secs(30);

/// A store plus whatever keeps its database alive.
struct Fixture {
    store: Arc<dyn Store>,
    /// Where it is: a second `connect` to it plays another process.
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for Fixture {
    type Target = Arc<dyn Store>;
    fn deref(&self) -> &Self::Target {
        &self.store
    }
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("assay.db").display()
    );
    Fixture {
        store: connect(&url).await.unwrap(),
        url,
        _dir: Some(dir),
    }
}

async fn postgres() -> Fixture {
    let url = assay_test_support::postgres::fresh_postgres_database();
    Fixture {
        store: connect(&url).await.unwrap(),
        url,
        _dir: None,
    }
}

/// Runs each named test body against both backends.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::sqlite().await).await; })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::postgres().await).await; })*
        }
    };
}

contract!(
    dataset_crud,
    versions_pin_the_items_a_run_sees,
    item_history_and_dataset_versions,
    schema_validation_names_the_field,
    schema_change_revalidates_items,
    pagination_and_search,
    tenant_isolation,
    write_results_is_idempotent,
    concurrent_writes_cannot_pass_a_limit_together,
    results_filter_in_the_database,
    stale_owner_cannot_write,
    a_lapsed_claim_of_the_same_owner_cannot_write,
    claim_next_run_passes_over_runs_the_caller_executes,
    takeovers_count_only_runs_whose_owner_went_away,
    claim_semantics,
    two_hosts_never_share_a_run,
    claim_next_run_respects_max_active_runs,
    claim_next_run_is_fair_across_tenants_and_in_order_within_one,
    claim_next_run_follows_tenant_weights,
    idle_tenant_claim_takes_only_tenants_with_nothing_running,
    tenant_weight_is_stored_and_checked,
    pending_items_skips_items_with_results,
    paging_crosses_long_stretches_of_done_or_deleted_items,
    cancel_transitions,
    finish_run_counts_exactly,
    fail_run_marks_setup_failures,
    results_stream_after_seq,
    outlines_read_token_usage_and_skip_what_is_not_a_count,
    outlines_read_scorer_usage_and_skip_what_is_not_a_count,
    deletes_cascade_and_refuse_active_runs,
    plugin_bytes_round_trip,
    unknown_stored_target_type_is_corrupt,
    add_ten_thousand_items_in_one_call,
    adds_over_the_caps_are_refused_and_store_nothing,
    streamed_items_land_together_or_not_at_all,
    item_limit_per_dataset,
    api_keys_are_found_by_hash_listed_and_revoked,
    tenants_are_created_by_name_once_and_their_limits_edited,
    tenant_usage_counts_what_a_tenant_holds,
    stored_bytes_limit_refuses_items_and_changes_nothing,
    shared_plugins_are_visible_to_every_tenant,
    plugin_grants_are_per_tenant_and_go_with_the_plugin,
    secrets_are_set_listed_read_sealed_and_deleted,
    rescoring_runs_link_to_a_finished_parent_and_read_its_outputs,
    target_models_count_what_the_server_reported,
    trials_of_a_run_with_repeats_are_results_of_their_own,
    repeats_are_checked_when_a_run_is_created,
    chunks_hand_out_every_position_once_across_claims,
    finishing_a_chunk_says_the_run_is_done_only_once_every_position_is,
    a_helper_writes_only_inside_the_chunks_it_holds,
    lapsed_and_released_chunks_are_claimed_again_first,
    run_to_help_finds_held_runs_with_work_nobody_holds,
    run_to_help_prefers_the_tenant_holding_the_fewest_live_chunks,
    run_to_help_follows_tenant_weights,
    chunk_renewals_report_cancel_and_the_end_of_the_run,
    a_run_without_items_is_done_at_once_and_never_offered,
);

// ---------------------------------------------------------------- helpers

fn new_dataset(name: &str) -> NewDataset {
    NewDataset {
        name: name.into(),
        ..Default::default()
    }
}

fn item(i: usize) -> NewItem {
    NewItem {
        input: json!({"question": format!("Question {i}")}),
        expected_output: Some(json!(format!("answer {i}"))),
        context: None,
    }
}

fn items(range: std::ops::Range<usize>) -> Vec<NewItem> {
    range.map(item).collect()
}

async fn dataset_with(s: &Fixture, name: &str, n: usize) -> (Dataset, Vec<DatasetItem>) {
    let ds = s.create_dataset(T, new_dataset(name)).await.unwrap();
    let added = s.add_items(T, &ds.id, items(0..n)).await.unwrap();
    let ds = s.get_dataset(T, &ds.id).await.unwrap();
    (ds, added)
}

fn new_run(ds: &Dataset) -> NewRun {
    NewRun {
        id: None,
        dataset_id: ds.id.clone(),
        dataset_version: ds.version,
        target_type: TargetType::Plugin,
        target_id: "echo".into(),
        scorer_ids: vec!["exact".into(), "len".into()],
        config: json!({"maxConcurrency": 4}),
        total_items: ds.item_count,
        repeats: 1,
        parent_run_id: None,
    }
}

fn result_for(item: &DatasetItem, index: i64, error: Option<&str>) -> NewResult {
    let now = Utc::now();
    NewResult {
        item_id: item.id.clone(),
        item_index: index,
        trial: 0,
        item_version: item.version,
        input: item.input.clone(),
        output: error.is_none().then(|| json!({"echo": item.input.clone()})),
        expected_output: item.expected_output.clone(),
        latency: 1.25,
        error: error.map(str::to_string),
        error_kind: error.map(|_| "failed".to_string()),
        started_at: now,
        completed_at: now,
        retry_count: 0,
        trace_id: Some(format!("trace-{index}")),
        // What a contract 0.2 target reports; absent on failed items, as
        // a failed call returns no output.
        target_metadata: error.is_none().then(|| {
            json!({"usage": {"promptTokens": index, "completionTokens": 2, "totalTokens": index + 2},
                   "model": "stub-model", "latencyMs": 12.5})
        }),
        logs: None,
        scores: vec![
            ScoreRow {
                scorer_id: "exact".into(),
                scorer_name: "Exact match".into(),
                score: Some(1.0),
                reason: Some("equal".into()),
                error: None,
                metadata: Some(json!({"k": index})),
            },
            ScoreRow {
                scorer_id: "len".into(),
                scorer_name: "Length".into(),
                score: None,
                reason: None,
                error: Some("scorer trapped".into()),
                metadata: None,
            },
        ],
    }
}

fn field_of<T: std::fmt::Debug>(r: StoreResult<T>) -> String {
    match r {
        Err(StoreError::Validation { field, .. }) => field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(r: StoreResult<T>) {
    match r {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

fn assert_conflict<T: std::fmt::Debug>(r: StoreResult<T>) {
    match r {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

fn assert_lease_lost<T: std::fmt::Debug>(r: StoreResult<T>) {
    match r {
        Err(StoreError::LeaseLost) => {}
        other => panic!("expected LeaseLost, got {other:?}"),
    }
}

async fn all_items_at(s: &Fixture, ds: &str, version: i64) -> Vec<DatasetItem> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = s.items_at_version(T, ds, version, after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.position);
        out.extend(page);
    }
    out
}

// ---------------------------------------------------------------- datasets

async fn dataset_crud(s: Fixture) {
    s.ping().await.unwrap();
    let a = s
        .create_dataset(
            T,
            NewDataset {
                name: "alpha".into(),
                description: Some("first".into()),
                metadata: Some(json!({"team": "evals"})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(a.version, 0);
    assert_eq!(a.item_count, 0);
    let b = s.create_dataset(T, new_dataset("beta")).await.unwrap();
    assert_conflict(s.create_dataset(T, new_dataset("alpha")).await);
    assert_eq!(
        field_of(s.create_dataset(T, new_dataset("  ")).await),
        "name"
    );

    assert_eq!(s.get_dataset(T, &a.id).await.unwrap(), a);
    let listed = s.list_datasets(T, Page::new(0, 10)).await.unwrap();
    assert_eq!(listed.total, 2);
    assert_eq!(
        listed
            .items
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["beta", "alpha"],
        "newest first"
    );
    let found = s.find_dataset_by_name(T, "beta").await.unwrap().unwrap();
    assert_eq!(found.id, b.id);
    assert!(s.find_dataset_by_name(T, "gamma").await.unwrap().is_none());

    let patched = s
        .update_dataset(
            T,
            &a.id,
            DatasetPatch {
                name: Some("alpha2".into()),
                description: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.name, "alpha2");
    assert_eq!(patched.description, None);
    assert_eq!(patched.metadata, Some(json!({"team": "evals"})));
    assert_eq!(patched.version, 0, "renaming does not change the items");
    assert_eq!(s.get_dataset(T, &a.id).await.unwrap(), patched);
    assert_conflict(
        s.update_dataset(
            T,
            &a.id,
            DatasetPatch {
                name: Some("beta".into()),
                ..Default::default()
            },
        )
        .await,
    );

    s.delete_dataset(T, &a.id).await.unwrap();
    let err = s.get_dataset(T, &a.id).await.unwrap_err();
    assert_eq!(err.to_string(), format!("Dataset not found: {}", a.id));
    assert_not_found(s.delete_dataset(T, &a.id).await);
    assert_eq!(s.list_datasets(T, Page::default()).await.unwrap().total, 1);
}

async fn versions_pin_the_items_a_run_sees(s: Fixture) {
    let (ds, v1_items) = dataset_with(&s, "pinned", 3).await;
    assert_eq!(ds.version, 1, "one bump per add call");
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    assert_eq!(run.dataset_version, 1);
    assert_eq!(run.total_items, 3);

    s.add_items(T, &ds.id, items(10..12)).await.unwrap(); // v2
    s.update_item(
        T,
        &ds.id,
        &v1_items[0].id,
        ItemPatch {
            input: Some(json!({"question": "changed"})),
            ..Default::default()
        },
    )
    .await
    .unwrap(); // v3
    assert_eq!(
        s.delete_items(T, &ds.id, std::slice::from_ref(&v1_items[1].id))
            .await
            .unwrap(),
        1
    ); // v4
    assert_eq!(s.get_dataset(T, &ds.id).await.unwrap().version, 4);

    // The run's version: exactly the original three, as they were.
    let at_v1 = all_items_at(&s, &ds.id, 1).await;
    assert_eq!(at_v1, v1_items);
    assert_eq!(s.count_items_at_version(T, &ds.id, 1).await.unwrap(), 3);
    let pending = s.pending_items(T, &run.id, None, 100).await.unwrap();
    assert_eq!(pending, v1_items);

    // The latest version.
    let at_v4 = all_items_at(&s, &ds.id, 4).await;
    let questions: Vec<&Value> = at_v4.iter().map(|i| &i.input["question"]).collect();
    assert_eq!(
        questions,
        ["changed", "Question 2", "Question 10", "Question 11"]
    );
    assert_eq!(at_v4[0].version, 3);
    assert_eq!(at_v4[0].position, v1_items[0].position);
    assert_eq!(s.count_items_at_version(T, &ds.id, 4).await.unwrap(), 4);
    assert_eq!(s.count_items_at_version(T, &ds.id, 2).await.unwrap(), 5);
    assert_eq!(s.count_items_at_version(T, &ds.id, 0).await.unwrap(), 0);
    assert_eq!(s.get_dataset(T, &ds.id).await.unwrap().item_count, 4);
    assert_not_found(s.items_at_version(T, &ds.id, 5, None, 10).await);
    assert_not_found(s.get_item(T, &ds.id, &v1_items[1].id).await);

    // list_items with a version shows that version.
    let listed = s
        .list_items(
            T,
            &ds.id,
            ItemQuery {
                version: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.items, v1_items);
}

async fn item_history_and_dataset_versions(s: Fixture) {
    let (ds, added) = dataset_with(&s, "history", 2).await;
    let id = &added[0].id;
    let updated = s
        .update_item(
            T,
            &ds.id,
            id,
            ItemPatch {
                expected_output: Some(None),
                context: Some(Some(json!({"source": "manual"}))),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.expected_output, None);
    assert_eq!(updated.context, Some(json!({"source": "manual"})));
    assert_eq!(updated.input, added[0].input);
    assert_eq!(updated.version, 2);
    assert_eq!(updated.created_at, added[0].created_at);
    assert_eq!(s.get_item(T, &ds.id, id).await.unwrap(), updated);
    s.delete_items(T, &ds.id, &[id.clone(), "no-such-item".into()])
        .await
        .unwrap();

    let history = s
        .list_item_versions(T, &ds.id, id, Page::default())
        .await
        .unwrap();
    assert_eq!(history.total, 3);
    let numbers: Vec<(i64, i64, bool)> = history
        .items
        .iter()
        .map(|v| (v.version_number, v.dataset_version, v.is_deleted))
        .collect();
    assert_eq!(numbers, [(3, 3, true), (2, 2, false), (1, 1, false)]);
    let v1 = s.get_item_version(T, &ds.id, id, 1).await.unwrap();
    assert_eq!(v1.snapshot.input, added[0].input);
    assert_eq!(v1.snapshot.expected_output, added[0].expected_output);
    assert_not_found(s.get_item_version(T, &ds.id, id, 4).await);
    assert_not_found(
        s.list_item_versions(T, &ds.id, "no-such-item", Page::default())
            .await,
    );

    // Nothing matched: no bump.
    assert_eq!(
        s.delete_items(T, &ds.id, &["no-such-item".into()])
            .await
            .unwrap(),
        0
    );
    let versions = s
        .list_dataset_versions(T, &ds.id, Page::default())
        .await
        .unwrap();
    let changes: Vec<(i64, &str)> = versions
        .items
        .iter()
        .map(|v| (v.version, v.change.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            (3, "items.delete"),
            (2, "items.update"),
            (1, "items.add"),
            (0, "dataset.create")
        ]
    );
}

// ---------------------------------------------------------------- schemas

fn question_schema() -> Value {
    json!({
        "type": "object",
        "required": ["question"],
        "properties": {"question": {"type": "string"}}
    })
}

async fn schema_validation_names_the_field(s: Fixture) {
    assert_eq!(
        field_of(
            s.create_dataset(
                T,
                NewDataset {
                    name: "bad".into(),
                    input_schema: Some(json!({"type": 12})),
                    ..Default::default()
                },
            )
            .await
        ),
        "inputSchema"
    );
    let ds = s
        .create_dataset(
            T,
            NewDataset {
                name: "typed".into(),
                input_schema: Some(question_schema()),
                output_schema: Some(json!({"type": "string"})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut batch = items(0..3);
    batch[1].input = json!({"question": 42});
    assert_eq!(
        field_of(s.add_items(T, &ds.id, batch).await),
        "items[1].input.question"
    );
    let mut batch = items(0..3);
    batch[2].expected_output = Some(json!({"not": "a string"}));
    assert_eq!(
        field_of(s.add_items(T, &ds.id, batch).await),
        "items[2].expectedOutput"
    );
    // All or nothing.
    let after = s.get_dataset(T, &ds.id).await.unwrap();
    assert_eq!((after.version, after.item_count), (0, 0));

    let added = s.add_items(T, &ds.id, items(0..2)).await.unwrap();
    assert_eq!(
        field_of(
            s.update_item(
                T,
                &ds.id,
                &added[0].id,
                ItemPatch {
                    input: Some(json!({"prompt": "no question"})),
                    ..Default::default()
                },
            )
            .await
        ),
        "input.question"
    );
    assert_eq!(s.get_item(T, &ds.id, &added[0].id).await.unwrap(), added[0]);
}

async fn schema_change_revalidates_items(s: Fixture) {
    let (ds, added) = dataset_with(&s, "evolving", 12).await;
    let strict = json!({
        "type": "object",
        "properties": {"question": {"type": "string", "maxLength": 5}}
    });
    let err = s
        .update_dataset(
            T,
            &ds.id,
            DatasetPatch {
                input_schema: Some(Some(strict)),
                description: Some(Some("ignored on failure".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let StoreError::Validation { field, message } = err else {
        panic!("expected a validation error, got {err:?}")
    };
    assert_eq!(field, "inputSchema");
    assert!(message.starts_with("12 existing item(s)"), "{message}");
    assert_eq!(
        message.matches("item ").count(),
        10,
        "at most 10 listed: {message}"
    );
    assert!(message.contains(&added[0].id));
    let unchanged = s.get_dataset(T, &ds.id).await.unwrap();
    assert_eq!(unchanged, ds, "nothing changed");

    // A schema every item satisfies: accepted, one bump.
    let ok = s
        .update_dataset(
            T,
            &ds.id,
            DatasetPatch {
                input_schema: Some(Some(question_schema())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(ok.version, ds.version + 1);
    assert_eq!(ok.input_schema, Some(question_schema()));
    assert_eq!(
        s.count_items_at_version(T, &ds.id, ok.version)
            .await
            .unwrap(),
        12
    );
    // Removing it is a schema change too.
    let cleared = s
        .update_dataset(
            T,
            &ds.id,
            DatasetPatch {
                input_schema: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (cleared.version, cleared.input_schema),
        (ok.version + 1, None)
    );
}

// ---------------------------------------------------------------- listing

async fn pagination_and_search(s: Fixture) {
    let (ds, added) = dataset_with(&s, "paged", 25).await;
    let page1 = s
        .list_items(
            T,
            &ds.id,
            ItemQuery {
                page: Page::new(1, 10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page1.total, 25);
    assert!(page1.has_more);
    assert_eq!((page1.page, page1.per_page), (1, 10));
    assert_eq!(page1.items, added[10..20]);
    let page2 = s
        .list_items(
            T,
            &ds.id,
            ItemQuery {
                page: Page::new(2, 10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page2.items, added[20..25]);
    assert!(!page2.has_more);
    let capped = s
        .list_items(
            T,
            &ds.id,
            ItemQuery {
                page: Page::new(0, 1000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(capped.per_page, 100);

    let search = |q: &str| ItemQuery {
        search: Some(q.into()),
        page: Page::new(0, 100),
        ..Default::default()
    };
    // "question 1" matches 1 and 10..19 (case-insensitive).
    let hits = s.list_items(T, &ds.id, search("QUESTION 1")).await.unwrap();
    assert_eq!(hits.total, 11);
    assert_eq!(hits.items[0].id, added[1].id);
    // expectedOutput is searched too.
    let hits = s.list_items(T, &ds.id, search("Answer 24")).await.unwrap();
    assert_eq!(hits.items.len(), 1);
    assert_eq!(hits.items[0].id, added[24].id);
    // LIKE wildcards are literal.
    assert_eq!(s.list_items(T, &ds.id, search("%")).await.unwrap().total, 0);
    assert_eq!(s.list_items(T, &ds.id, search("_")).await.unwrap().total, 0);
}

async fn tenant_isolation(s: Fixture) {
    let b = Tenant {
        max_active_runs: 3,
        ..Tenant::with_defaults("tenant-b")
    };
    assert_eq!(s.upsert_tenant(&b).await.unwrap(), b);
    assert_eq!(s.get_tenant("tenant-b").await.unwrap(), b);
    assert_eq!(s.get_tenant(T).await.unwrap().id, T);
    assert_not_found(s.get_tenant("nobody").await);
    assert_not_found(s.create_dataset("nobody", new_dataset("x")).await);

    let (ds, added) = dataset_with(&s, "private", 2).await;
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    s.register_plugin(
        T,
        plugin_record("secret", PluginKind::Target),
        vec![1, 2, 3],
    )
    .await
    .unwrap();
    let bt = "tenant-b";
    assert_not_found(s.get_dataset(bt, &ds.id).await);
    assert_not_found(s.get_item(bt, &ds.id, &added[0].id).await);
    assert_not_found(s.add_items(bt, &ds.id, items(0..1)).await);
    assert_not_found(s.delete_items(bt, &ds.id, &[added[0].id.clone()]).await);
    assert_not_found(s.list_items(bt, &ds.id, ItemQuery::default()).await);
    assert_not_found(s.items_at_version(bt, &ds.id, 1, None, 10).await);
    assert_not_found(s.delete_dataset(bt, &ds.id).await);
    assert_not_found(s.get_run(bt, &run.id).await);
    assert_not_found(s.request_cancel(bt, &run.id).await);
    assert_not_found(s.claim_run(bt, &run.id, "owner", LEASE).await);
    assert_not_found(s.pending_items(bt, &run.id, None, 10).await);
    assert_not_found(s.list_results(bt, &run.id, Page::default()).await);
    assert_not_found(s.get_plugin(bt, "secret").await);
    assert_not_found(s.plugin_bytes(bt, "secret").await);
    let mut as_b = new_run(&ds);
    as_b.id = None;
    assert_not_found(s.create_run(bt, as_b).await);
    assert_eq!(s.list_datasets(bt, Page::default()).await.unwrap().total, 0);
    assert_eq!(
        s.list_runs(bt, None, Page::default()).await.unwrap().total,
        0
    );
    assert_eq!(s.list_plugins(bt, Page::default()).await.unwrap().total, 0);
    // The same name is free in another tenant.
    s.create_dataset(bt, new_dataset("private")).await.unwrap();
    // And everything is still there for its owner.
    assert_eq!(s.get_dataset(T, &ds.id).await.unwrap().item_count, 2);
}

// ---------------------------------------------------------------- execution

async fn claimed_run(s: &Fixture, n: usize, owner: &str) -> (Dataset, Vec<DatasetItem>, Run) {
    let (ds, added) = dataset_with(s, "exec", n).await;
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    let run = s.claim_run(T, &run.id, owner, LEASE).await.unwrap();
    assert_eq!(run.status, RunStatus::Running);
    (ds, added, run)
}

async fn write_results_is_idempotent(s: Fixture) {
    let (_, added, run) = claimed_run(&s, 4, "w1").await;
    let batch: Vec<NewResult> = added[..3]
        .iter()
        .enumerate()
        .map(|(i, it)| result_for(it, i as i64, (i == 1).then_some("boom")))
        .collect();
    let first = s
        .write_results(&run.id, &Claim::of("w1", &run), batch.clone())
        .await
        .unwrap();
    assert_eq!(
        first,
        WriteOutcome {
            inserted: 3,
            duplicates: 0
        }
    );
    // The same batch again, with different scores: nothing changes.
    let mut again = batch.clone();
    again[0].scores[0].score = Some(0.0);
    let second = s
        .write_results(&run.id, &Claim::of("w1", &run), again)
        .await
        .unwrap();
    assert_eq!(
        second,
        WriteOutcome {
            inserted: 0,
            duplicates: 3
        }
    );
    // A mixed batch: one old, one new.
    let mixed = vec![batch[2].clone(), result_for(&added[3], 3, None)];
    let third = s
        .write_results(&run.id, &Claim::of("w1", &run), mixed)
        .await
        .unwrap();
    assert_eq!((third.inserted, third.duplicates), (1, 1));

    let r = s.get_run(T, &run.id).await.unwrap();
    assert_eq!((r.succeeded_count, r.failed_count), (3, 1));
    let results = s.list_results(T, &run.id, Page::default()).await.unwrap();
    assert_eq!(results.total, 4);
    let indexes: Vec<i64> = results.items.iter().map(|r| r.item_index).collect();
    assert_eq!(indexes, [0, 1, 2, 3]);
    let r0 = &results.items[0];
    assert_eq!(r0.item_id, added[0].id);
    assert_eq!(r0.run_id, run.id);
    assert_eq!(r0.scores, batch[0].scores, "scores kept, in order");
    assert_eq!(r0.output, batch[0].output);
    assert_eq!(r0.latency, 1.25);
    assert_eq!(r0.trace_id.as_deref(), Some("trace-0"));
    assert_eq!(
        r0.target_metadata,
        Some(
            json!({"usage": {"promptTokens": 0, "completionTokens": 2, "totalTokens": 2},
                    "model": "stub-model", "latencyMs": 12.5})
        ),
        "the target's metadata is stored with the result"
    );
    assert_eq!(results.items[1].target_metadata, None);
    assert_eq!(
        r0.started_at.timestamp_millis(),
        batch[0].started_at.timestamp_millis()
    );
    assert_eq!(results.items[1].error.as_deref(), Some("boom"));
    assert_eq!(results.items[1].output, None);
    // One item twice in one batch is refused.
    let dup = vec![
        result_for(&added[0], 0, None),
        result_for(&added[0], 0, None),
    ];
    assert_eq!(
        field_of(s.write_results(&run.id, &Claim::of("w1", &run), dup).await),
        "results[1].itemId"
    );
}

/// Failed-only and score-below filters, each alone and both together,
/// paged and counted in the database.
async fn results_filter_in_the_database(s: Fixture) {
    let (_, added, run) = claimed_run(&s, 6, "w1").await;
    // exact: 0.0, 0.3, 0.9, 1.0, (target failed, no score), 0.2 with the
    // second scorer failing on item 5 only.
    let exact = [Some(0.0), Some(0.3), Some(0.9), Some(1.0), None, Some(0.2)];
    let batch: Vec<NewResult> = added
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let mut r = result_for(it, i as i64, (i == 4).then_some("target failed"));
            r.scores[0].score = exact[i];
            if exact[i].is_none() {
                r.scores[0].error = Some("no output".into());
            }
            r.scores[1] = ScoreRow {
                score: (i != 5).then_some(0.5),
                error: (i == 5).then(|| "scorer trapped".to_string()),
                ..r.scores[1].clone()
            };
            r
        })
        .collect();
    s.write_results(&run.id, &Claim::of("w1", &run), batch)
        .await
        .unwrap();
    let indexes = |page: Paged<RunResult>| -> (i64, Vec<i64>) {
        (
            page.total,
            page.items.iter().map(|r| r.item_index).collect(),
        )
    };
    let below = |scorer: &str, below: f64| {
        Some(ScoreBelow {
            scorer_id: scorer.into(),
            below,
        })
    };

    let all = s
        .filter_results(T, &run.id, &ResultFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(indexes(all), (6, vec![0, 1, 2, 3, 4, 5]));

    let failed = ResultFilter {
        failed_only: true,
        score_below: None,
    };
    let got = s.filter_results(T, &run.id, &failed, Page::default());
    assert_eq!(
        indexes(got.await.unwrap()),
        (2, vec![4, 5]),
        "target or scorer failed"
    );

    let low = ResultFilter {
        failed_only: false,
        score_below: below("exact", 0.5),
    };
    let got = s.filter_results(T, &run.id, &low, Page::default());
    assert_eq!(
        indexes(got.await.unwrap()),
        (3, vec![0, 1, 5]),
        "no score is not below"
    );

    let page = s.filter_results(T, &run.id, &low, Page::new(1, 2));
    assert_eq!(
        indexes(page.await.unwrap()),
        (3, vec![5]),
        "second page of two"
    );

    let both = ResultFilter {
        failed_only: true,
        score_below: below("exact", 0.5),
    };
    let got = s.filter_results(T, &run.id, &both, Page::default());
    assert_eq!(indexes(got.await.unwrap()), (1, vec![5]));

    let unknown = ResultFilter {
        failed_only: false,
        score_below: below("nobody", 2.0),
    };
    let got = s.filter_results(T, &run.id, &unknown, Page::default());
    assert_eq!(indexes(got.await.unwrap()), (0, vec![]));

    assert_not_found(
        s.filter_results("other-tenant", &run.id, &failed, Page::default())
            .await,
    );

    // Outlines carry what statistics need, the same as the full results.
    let full = s.list_results(T, &run.id, Page::default()).await.unwrap();
    let outlines = s.result_outlines_after_seq(T, &run.id, 0, 4).await.unwrap();
    assert_eq!(outlines.len(), 4, "limit respected");
    let rest = s
        .result_outlines_after_seq(T, &run.id, outlines[3].0, 100)
        .await
        .unwrap();
    assert_eq!(rest.len(), 2, "resumes after the last sequence number");
    let mut outlines: Vec<ResultOutline> =
        outlines.into_iter().chain(rest).map(|(_, o)| o).collect();
    outlines.sort_by_key(|o| o.item_index);
    for (o, r) in outlines.iter().zip(&full.items) {
        // Outlines leave the scores' metadata out (only its usage is read).
        let scores_without_metadata: Vec<ScoreRow> = r
            .scores
            .iter()
            .map(|s| ScoreRow {
                metadata: None,
                ..s.clone()
            })
            .collect();
        assert_eq!(
            (
                &o.item_id,
                o.item_index,
                o.latency,
                &o.error,
                &o.error_kind,
                &o.scores,
                o.usage,
            ),
            (
                &r.item_id,
                r.item_index,
                r.latency,
                &r.error,
                &r.error_kind,
                &scores_without_metadata,
                r.target_metadata
                    .as_ref()
                    .and_then(TokenUsage::from_metadata),
            )
        );
    }
    assert!(outlines.iter().any(|o| o.usage.is_some()));
    assert_not_found(
        s.result_outlines_after_seq("other-tenant", &run.id, 0, 10)
            .await,
    );
}

/// An outline carries the token usage each score's metadata reported (an
/// LLM judge's calls), read in the database apart from the target's. The
/// per-scorer sums over a run read page by page equal the sums of the
/// numbers written; score metadata without usage, or with anything that is
/// not a count, is absent (never an error, never a zero).
async fn outlines_read_scorer_usage_and_skip_what_is_not_a_count(s: Fixture) {
    const N: usize = 23;
    let (_, added, run) = claimed_run(&s, N, "w1").await;
    // Item i: the `exact` judge used (2i + 5, i % 4 + 1) tokens on the
    // items where `valid(i)`; on the others its metadata is one of the
    // hostile shapes. `len` reports OpenAI's snake_case names on every
    // third item and nothing on the rest.
    let valid = |i: usize| !i.is_multiple_of(5);
    let hostile = [
        json!({"usage": "12 tokens"}),
        json!({"usage": {"totalTokens": -3, "promptTokens": "many"}}),
        json!(["usage", {"usage": {"totalTokens": 9}}]),
        json!("usage"),
        json!({"usage": null, "model": "judge"}),
    ];
    let exact_metadata = |i: usize| {
        if valid(i) {
            let (p, c) = (2 * i as u64 + 5, i as u64 % 4 + 1);
            json!({"usage": {"promptTokens": p, "completionTokens": c, "totalTokens": p + c},
                   "model": "judge-model"})
        } else {
            hostile[(i / 5) % hostile.len()].clone()
        }
    };
    let len_metadata = |i: usize| {
        i.is_multiple_of(3)
            .then(|| json!({"usage": {"prompt_tokens": i + 1, "completion_tokens": 2}}))
    };
    let batch: Vec<NewResult> = added
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let mut r = result_for(it, i as i64, None);
            r.scores[0].metadata = Some(exact_metadata(i));
            r.scores[1].metadata = len_metadata(i);
            r
        })
        .collect();
    s.write_results(&run.id, &Claim::of("w1", &run), batch)
        .await
        .unwrap();

    // Read page by page, as the summary does.
    let mut sums: std::collections::BTreeMap<String, (u64, u64, u64, u64)> = Default::default();
    let (mut after, mut read) = (0, 0);
    loop {
        let page = s
            .result_outlines_after_seq(T, &run.id, after, 4)
            .await
            .unwrap();
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (_, o) in &page {
            read += 1;
            assert!(
                o.scores.iter().all(|s| s.metadata.is_none()),
                "outlines leave the scores' metadata out: {o:?}"
            );
            for u in &o.score_usage {
                let sum = sums.entry(u.scorer_id.clone()).or_default();
                sum.0 += u.usage.prompt_tokens;
                sum.1 += u.usage.completion_tokens;
                sum.2 += u.usage.total_tokens;
                sum.3 += 1;
            }
        }
    }
    assert_eq!(read, N);

    let want_exact = (0..N).filter(|&i| valid(i)).fold((0, 0, 0, 0), |acc, i| {
        let (p, c) = (2 * i as u64 + 5, i as u64 % 4 + 1);
        (acc.0 + p, acc.1 + c, acc.2 + p + c, acc.3 + 1)
    });
    let want_len = (0..N)
        .filter(|i| i.is_multiple_of(3))
        .fold((0, 0, 0, 0), |acc, i| {
            (
                acc.0 + i as u64 + 1,
                acc.1 + 2,
                acc.2 + i as u64 + 3,
                acc.3 + 1,
            )
        });
    assert_eq!(want_exact.3, 18, "the hostile shapes are in the data");
    assert_eq!(sums.get("exact"), Some(&want_exact));
    assert_eq!(sums.get("len"), Some(&want_len));
    assert_eq!(sums.len(), 2);

    // The target's usage is still its own (`result_for` reports index + 2
    // per item), unmixed with the judges'.
    let target: u64 = s
        .result_outlines_after_seq(T, &run.id, 0, 100)
        .await
        .unwrap()
        .iter()
        .filter_map(|(_, o)| o.usage.map(|u| u.total_tokens))
        .sum();
    assert_eq!(target, (0..N as u64).map(|i| i + 2).sum::<u64>());
}

/// Limits are checked inside each write's transaction: many concurrent
/// creates, from two connections (two processes), never take a tenant
/// past a limit, and every refused one says which limit.
async fn concurrent_writes_cannot_pass_a_limit_together(s: Fixture) {
    let limits = TenantLimits {
        datasets: 3,
        plugins: 2,
        queued_runs: 2,
        ..TenantLimits::default()
    };
    s.create_tenant("tight", &limits).await.unwrap();
    let other = connect(&s.url).await.unwrap();
    let stores = [s.store.clone(), other];

    let creates = (0..10).map(|i| {
        let store = stores[i % 2].clone();
        async move {
            store
                .create_dataset("tight", new_dataset(&format!("ds-{i}")))
                .await
        }
    });
    let results = futures::future::join_all(creates).await;
    let made = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(made, 3, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(
                r,
                StoreError::LimitExceeded {
                    key: "datasets",
                    ..
                }
            ),
            "{r:?}"
        );
    }

    let registers = (0..6).map(|i| {
        let store = stores[i % 2].clone();
        async move {
            let record = plugin_record(&format!("p{i}"), PluginKind::Scorer);
            store.register_plugin("tight", record, vec![0; 10]).await
        }
    });
    let results = futures::future::join_all(registers).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        2,
        "{results:?}"
    );
    // Replacing a plugin the tenant has is not one more plugin.
    let kept = results.iter().find_map(|r| r.as_ref().ok()).unwrap();
    let again = plugin_record(&kept.id, PluginKind::Scorer);
    s.register_plugin("tight", again, vec![1; 10])
        .await
        .unwrap();

    let ds = s
        .list_datasets("tight", Page::default())
        .await
        .unwrap()
        .items[0]
        .clone();
    s.add_items("tight", &ds.id, items(0..1)).await.unwrap();
    let ds = s.get_dataset("tight", &ds.id).await.unwrap();
    let triggers = (0..6).map(|i| {
        let store = stores[i % 2].clone();
        let run = new_run(&ds);
        async move { store.create_run("tight", run).await }
    });
    let results = futures::future::join_all(triggers).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        2,
        "{results:?}"
    );
    assert!(results.iter().any(|r| matches!(
        r,
        Err(StoreError::LimitExceeded {
            key: "queued-runs",
            limit: 2,
            ..
        })
    )));
    let usage = s.tenant_usage("tight").await.unwrap();
    assert_eq!(
        (usage.datasets, usage.plugins, usage.queued_runs),
        (3, 2, 2)
    );
}

/// A claim counts a takeover only when it takes a running run whose owner
/// is gone (lease expired); starting a pending run, re-claiming one's own
/// run, or taking a run released on shutdown is not a takeover.
async fn takeovers_count_only_runs_whose_owner_went_away(s: Fixture) {
    let (ds, _) = dataset_with(&s, "takeovers", 2).await;
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    let short = Duration::from_millis(30);
    let first = s.claim_run(T, &run.id, "a", short).await.unwrap();
    assert_eq!(first.takeovers, 0, "starting a pending run");
    let again = s.claim_run(T, &run.id, "a", short).await.unwrap();
    assert_eq!(again.takeovers, 0, "its own owner again");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (_, taken) = s.claim_next_run("b", short, &[]).await.unwrap().unwrap();
    assert_eq!((taken.id.as_str(), taken.takeovers), (run.id.as_str(), 1));
    tokio::time::sleep(Duration::from_millis(60)).await;
    let taken = s.claim_run(T, &run.id, "c", LEASE).await.unwrap();
    assert_eq!(taken.takeovers, 2, "claim_run counts too");
    s.release_run(&run.id, &Claim::of("c", &taken))
        .await
        .unwrap();
    let (_, resumed) = s.claim_next_run("d", LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(resumed.takeovers, 2, "a released run is not taken over");
    assert_eq!(s.get_run(T, &run.id).await.unwrap().takeovers, 2);
}

async fn stale_owner_cannot_write(s: Fixture) {
    let (ds, added) = dataset_with(&s, "fenced", 3).await;
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    let run = s
        .claim_run(T, &run.id, "old", Duration::from_millis(50))
        .await
        .unwrap();
    s.write_results(
        &run.id,
        &Claim::of("old", &run),
        vec![result_for(&added[0], 0, None)],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let (tenant, taken) = s.claim_next_run("new", LEASE, &[]).await.unwrap().unwrap();
    assert_eq!((tenant.as_str(), taken.id.as_str()), (T, run.id.as_str()));

    assert_lease_lost(
        s.write_results(
            &run.id,
            &Claim::of("old", &run),
            vec![
                result_for(&added[1], 1, None),
                result_for(&added[2], 2, None),
            ],
        )
        .await,
    );
    assert_lease_lost(s.renew_lease(&run.id, &Claim::of("old", &run), LEASE).await);
    assert_lease_lost(
        s.finish_run(&run.id, &Claim::of("old", &run), RunStatus::Completed, None)
            .await,
    );
    let results = s.list_results(T, &run.id, Page::default()).await.unwrap();
    assert_eq!(results.total, 1, "the stale write left nothing");
    assert_eq!(s.get_run(T, &run.id).await.unwrap().succeeded_count, 1);
    // The new owner carries on.
    let ctl = s
        .renew_lease(&run.id, &Claim::of("new", &taken), LEASE)
        .await
        .unwrap();
    assert!(!ctl.cancel_requested);
    s.write_results(
        &run.id,
        &Claim::of("new", &taken),
        vec![result_for(&added[1], 1, None)],
    )
    .await
    .unwrap();
}

/// One process claims its own run again after the lease lapsed (a slow
/// plugin load, lock contention): the earlier execution has the same owner
/// id, but an older claim number, and every fenced call refuses it.
async fn a_lapsed_claim_of_the_same_owner_cannot_write(s: Fixture) {
    let (ds, added) = dataset_with(&s, "reclaimed", 3).await;
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    let first = s
        .claim_run(T, &run.id, "p", Duration::from_millis(50))
        .await
        .unwrap();
    let earlier = Claim::of("p", &first);
    s.write_results(&run.id, &earlier, vec![result_for(&added[0], 0, None)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let (_, second) = s.claim_next_run("p", LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(second.id, run.id);
    assert!(second.claim_number > first.claim_number);
    assert_eq!(second.takeovers, 0, "the same owner is no takeover");
    let later = Claim::of("p", &second);

    assert_lease_lost(
        s.write_results(&run.id, &earlier, vec![result_for(&added[1], 1, None)])
            .await,
    );
    assert_lease_lost(s.renew_lease(&run.id, &earlier, LEASE).await);
    assert_lease_lost(
        s.finish_run(&run.id, &earlier, RunStatus::Completed, None)
            .await,
    );
    // A setup failure found under the earlier claim (plugins that took
    // long to load) cannot fail the run the later claim now executes.
    assert_lease_lost(
        s.finish_run(
            &run.id,
            &earlier,
            RunStatus::Failed,
            Some("Target not found".into()),
        )
        .await,
    );
    let still = s.get_run(T, &run.id).await.unwrap();
    assert_eq!(still.status, RunStatus::Running);
    assert_eq!(still.error, None);
    // Releasing under the earlier claim leaves the later one holding it.
    s.release_run(&run.id, &earlier).await.unwrap();
    assert!(
        s.claim_next_run("other", LEASE, &[])
            .await
            .unwrap()
            .is_none()
    );
    let results = s.list_results(T, &run.id, Page::default()).await.unwrap();
    assert_eq!(results.total, 1, "the earlier claim wrote nothing more");

    s.renew_lease(&run.id, &later, LEASE).await.unwrap();
    s.write_results(&run.id, &later, vec![result_for(&added[1], 1, None)])
        .await
        .unwrap();
    let done = s
        .finish_run(&run.id, &later, RunStatus::Completed, None)
        .await
        .unwrap();
    assert_eq!(done.succeeded_count, 2);
}

/// A scheduler names the runs it executes; a claim never takes one of
/// them again, even with its lease lapsed.
async fn claim_next_run_passes_over_runs_the_caller_executes(s: Fixture) {
    let (ds, _) = dataset_with(&s, "executing", 1).await;
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    let (_, first) = s
        .claim_next_run("p", Duration::from_millis(50), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.id, run.id);
    tokio::time::sleep(Duration::from_millis(120)).await;
    let executing = [run.id.clone()];
    assert!(
        s.claim_next_run("p", LEASE, &executing)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.claim_next_run_of_idle_tenant("p", LEASE, &executing)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.get_run(T, &run.id).await.unwrap().claim_number,
        first.claim_number,
        "not claimed again"
    );
    // A pending run is still taken while another executes.
    let next = s.create_run(T, new_run(&ds)).await.unwrap();
    let (_, got) = s
        .claim_next_run("p", LEASE, &executing)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, next.id);
    // Another process (not executing it) takes the lapsed run.
    let (_, taken) = s.claim_next_run("q", LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(taken.id, run.id);
}

fn field_and_message<T: std::fmt::Debug>(r: StoreResult<T>) -> (String, String) {
    match r {
        Err(StoreError::Validation { field, message }) => (field, message),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// A bulk add of more items than one call may add, or with one item over
/// the per-item byte cap, is refused with the cap's name and value; nothing
/// is stored and the version stays. An item update over the cap too.
async fn adds_over_the_caps_are_refused_and_store_nothing(s: Fixture) {
    use assay_store::validate::{MAX_ITEM_BYTES, MAX_ITEMS_PER_REQUEST};
    let (ds, added) = dataset_with(&s, "capped", 1).await;
    let too_many = (0..=MAX_ITEMS_PER_REQUEST)
        .map(|i| NewItem {
            input: json!(i),
            expected_output: None,
            context: None,
        })
        .collect();
    let (field, message) = field_and_message(s.add_items(T, &ds.id, too_many).await);
    assert_eq!(field, "items");
    assert!(
        message.contains(&format!("maxItemsPerRequest = {MAX_ITEMS_PER_REQUEST}")),
        "{message}"
    );

    let huge = json!({"question": "x".repeat(MAX_ITEM_BYTES as usize)});
    let batch = vec![
        item(1),
        NewItem {
            input: huge.clone(),
            expected_output: None,
            context: None,
        },
    ];
    let (field, message) = field_and_message(s.add_items(T, &ds.id, batch).await);
    assert_eq!(field, "items[1]");
    assert!(
        message.contains(&format!("maxItemBytes = {MAX_ITEM_BYTES}")),
        "{message}"
    );

    let (feed, batches) = tokio::sync::mpsc::channel(4);
    feed.send(ItemFeed::Batch(vec![item(2)])).await.unwrap();
    feed.send(ItemFeed::Batch(vec![NewItem {
        input: huge.clone(),
        expected_output: None,
        context: None,
    }]))
    .await
    .unwrap();
    feed.send(ItemFeed::Done).await.unwrap();
    let (field, _) = field_and_message(s.add_items_streamed(T, &ds.id, batches).await);
    assert_eq!(field, "items[1]", "named by its place in the whole feed");

    let patch = ItemPatch {
        input: Some(huge),
        ..Default::default()
    };
    let (field, message) = field_and_message(s.update_item(T, &ds.id, &added[0].id, patch).await);
    assert_eq!(field, "item");
    assert!(message.contains("maxItemBytes"), "{message}");

    let after = s.get_dataset(T, &ds.id).await.unwrap();
    assert_eq!((after.item_count, after.version), (1, ds.version));
    let stored = s.get_item(T, &ds.id, &added[0].id).await.unwrap();
    assert_eq!(stored.input, added[0].input);
}

async fn claim_semantics(s: Fixture) {
    let (ds, _) = dataset_with(&s, "claims", 2).await;
    assert!(s.claim_next_run("a", LEASE, &[]).await.unwrap().is_none());
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    assert_eq!(run.status, RunStatus::Pending);

    // Many claimers at once: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let st = s.store.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("owner-{i}");
            let got = st.claim_next_run(&owner, LEASE, &[]).await.unwrap();
            got.map(|(_, run)| (owner, run))
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        winners.extend(t.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "one run, one owner");
    let (holder, claimed) = winners.pop().unwrap();
    assert_eq!(claimed.status, RunStatus::Running);
    assert!(claimed.started_at.is_some());

    // The holder is live: nobody else gets it.
    assert!(
        s.claim_next_run("late", LEASE, &[])
            .await
            .unwrap()
            .is_none()
    );
    s.renew_lease(&run.id, &Claim::of(&holder, &claimed), LEASE)
        .await
        .unwrap();
    assert_conflict(s.claim_run(T, &run.id, "late", LEASE).await);
    // Re-claiming by the holder itself is fine (a new claim of it).
    let reclaimed = s.claim_run(T, &run.id, &holder, LEASE).await.unwrap();
    assert_eq!(reclaimed.claim_number, claimed.claim_number + 1);

    // A released run is taken at once by the next start.
    s.release_run(&run.id, &Claim::of(&holder, &reclaimed))
        .await
        .unwrap();
    assert_eq!(
        s.get_run(T, &run.id).await.unwrap().status,
        RunStatus::Running
    );
    assert_lease_lost(
        s.renew_lease(&run.id, &Claim::of(&holder, &reclaimed), LEASE)
            .await,
    );
    let (_, again) = s
        .claim_next_run("next", Duration::from_millis(50), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, run.id);
    assert_eq!(again.started_at, claimed.started_at, "startedAt kept");

    // An expired lease can be reclaimed by a specific claim.
    tokio::time::sleep(Duration::from_millis(120)).await;
    let rescued = s.claim_run(T, &run.id, "rescuer", LEASE).await.unwrap();
    assert_lease_lost(
        s.renew_lease(&run.id, &Claim::of("next", &again), LEASE)
            .await,
    );
    s.renew_lease(&run.id, &Claim::of("rescuer", &rescued), LEASE)
        .await
        .unwrap();

    // Finished runs cannot be claimed.
    s.finish_run(
        &run.id,
        &Claim::of("rescuer", &rescued),
        RunStatus::Completed,
        None,
    )
    .await
    .unwrap();
    assert_conflict(s.claim_run(T, &run.id, "rescuer", LEASE).await);
    assert!(s.claim_next_run("a", LEASE, &[]).await.unwrap().is_none());
}

async fn two_hosts_never_share_a_run(s: Fixture) {
    let other = connect(&s.url).await.unwrap();
    let (ds, _) = dataset_with(&s, "hosts", 2).await;
    let mut runs = Vec::new();
    for _ in 0..6 {
        runs.push(s.create_run(T, new_run(&ds)).await.unwrap().id);
    }
    let claim_all = |st: Arc<dyn Store>, owner: &'static str| {
        tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some((_, r)) = st.claim_next_run(owner, LEASE, &[]).await.unwrap() {
                // Each host writes a result as soon as it holds a run.
                let item = st.pending_items(T, &r.id, None, 1).await.unwrap();
                st.write_results(
                    &r.id,
                    &Claim::of(owner, &r),
                    vec![result_for(&item[0], 0, None)],
                )
                .await
                .unwrap();
                got.push(r.id);
            }
            got
        })
    };
    let a = claim_all(s.store.clone(), "host-a");
    let b = claim_all(other.clone(), "host-b");
    let mut all = a.await.unwrap();
    all.extend(b.await.unwrap());
    all.sort();
    runs.sort();
    assert_eq!(all, runs, "every run claimed exactly once");
    for id in &runs {
        let r = other.get_run(T, id).await.unwrap();
        assert_eq!(r.succeeded_count, 1);
    }
}

async fn claim_next_run_respects_max_active_runs(s: Fixture) {
    s.upsert_tenant(&Tenant {
        max_active_runs: 1,
        ..Tenant::with_defaults(T)
    })
    .await
    .unwrap();
    let (ds, _) = dataset_with(&s, "queue", 1).await;
    let first = s.create_run(T, new_run(&ds)).await.unwrap();
    let second = s.create_run(T, new_run(&ds)).await.unwrap();
    let (_, got) = s.claim_next_run("o", LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(got.id, first.id, "oldest first");
    assert!(
        s.claim_next_run("o", LEASE, &[]).await.unwrap().is_none(),
        "the tenant is at its maxActiveRuns"
    );
    s.finish_run(&first.id, &Claim::of("o", &got), RunStatus::Completed, None)
        .await
        .unwrap();
    let (_, got) = s.claim_next_run("o", LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(got.id, second.id);
}

/// Creates tenant `id` (default limits, `weight`) with a one-item dataset.
async fn tenant_with_dataset(s: &Fixture, id: &str, weight: i64) -> Dataset {
    let limits = TenantLimits {
        weight,
        ..TenantLimits::default()
    };
    s.create_tenant(id, &limits).await.unwrap();
    let ds = s.create_dataset(id, new_dataset("fair")).await.unwrap();
    s.add_items(id, &ds.id, items(0..1)).await.unwrap();
    s.get_dataset(id, &ds.id).await.unwrap()
}

/// Creates `n` runs of `tenant` on `ds`; returns their ids in creation order.
async fn runs_of(s: &Fixture, tenant: &str, ds: &Dataset, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(s.create_run(tenant, new_run(ds)).await.unwrap().id);
    }
    ids
}

/// Claims until nothing is left; returns the run ids in claim order.
async fn claim_order(s: &Fixture) -> Vec<String> {
    let mut order = Vec::new();
    while let Some((_, run)) = s.claim_next_run("o", LEASE, &[]).await.unwrap() {
        order.push(run.id);
    }
    order
}

fn ids(runs: &[&String]) -> Vec<String> {
    runs.iter().map(|id| id.to_string()).collect()
}

async fn claim_next_run_is_fair_across_tenants_and_in_order_within_one(s: Fixture) {
    let a = tenant_with_dataset(&s, "tenant-a", 1).await;
    let b = tenant_with_dataset(&s, "tenant-b", 1).await;
    let a_runs = runs_of(&s, "tenant-a", &a, 3).await;
    let b_runs = runs_of(&s, "tenant-b", &b, 2).await;
    // A queued all its runs first, yet B's first run comes right after A's
    // first: each claim goes to the tenant with fewer runs running, the
    // older run on a tie; A's runs and B's runs each keep their order.
    assert_eq!(
        claim_order(&s).await,
        ids(&[&a_runs[0], &b_runs[0], &a_runs[1], &b_runs[1], &a_runs[2]])
    );
}

async fn claim_next_run_follows_tenant_weights(s: Fixture) {
    let light = tenant_with_dataset(&s, "light", 1).await;
    let heavy = tenant_with_dataset(&s, "heavy", 2).await;
    let l = runs_of(&s, "light", &light, 3).await;
    let h = runs_of(&s, "heavy", &heavy, 4).await;
    // Runs running per unit of weight decide; the older run breaks ties.
    assert_eq!(
        claim_order(&s).await,
        ids(&[&l[0], &h[0], &h[1], &l[1], &h[2], &h[3], &l[2]])
    );
}

async fn idle_tenant_claim_takes_only_tenants_with_nothing_running(s: Fixture) {
    let a = tenant_with_dataset(&s, "tenant-a", 1).await;
    let b = tenant_with_dataset(&s, "tenant-b", 1).await;
    let off = tenant_with_dataset(&s, "no-runs", 1).await;
    let mut limits = s.tenant_limits("no-runs").await.unwrap();
    limits.active_runs = 0;
    s.set_tenant_limits("no-runs", &limits).await.unwrap();
    let a_runs = runs_of(&s, "tenant-a", &a, 2).await;
    runs_of(&s, "no-runs", &off, 1).await;
    let (_, first) = s.claim_next_run("o", LEASE, &[]).await.unwrap().unwrap();
    assert_eq!(first.id, a_runs[0]);
    assert!(
        s.claim_next_run_of_idle_tenant("o", LEASE, &[])
            .await
            .unwrap()
            .is_none(),
        "A has a run running; a tenant with maxActiveRuns 0 never runs"
    );
    let b_runs = runs_of(&s, "tenant-b", &b, 2).await;
    let (tenant, got) = s
        .claim_next_run_of_idle_tenant("o", LEASE, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!((tenant.as_str(), &got.id), ("tenant-b", &b_runs[0]));
    assert_eq!(got.status, RunStatus::Running);
    assert!(
        s.claim_next_run_of_idle_tenant("o", LEASE, &[])
            .await
            .unwrap()
            .is_none(),
        "B is no longer idle"
    );
    // A released (or expired) lease is left to the ordinary claim, which
    // takes it first; then A and B have one run each and the older goes.
    s.release_run(&a_runs[0], &Claim::of("o", &first))
        .await
        .unwrap();
    assert!(
        s.claim_next_run_of_idle_tenant("o", LEASE, &[])
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        claim_order(&s).await,
        ids(&[&a_runs[0], &a_runs[1], &b_runs[1]])
    );
}

async fn tenant_weight_is_stored_and_checked(s: Fixture) {
    assert_eq!(s.tenant_limits(T).await.unwrap().weight, 1, "default");
    let heavy = TenantLimits {
        weight: 1000,
        ..TenantLimits::default()
    };
    s.create_tenant("heavy", &heavy).await.unwrap();
    assert_eq!(s.tenant_limits("heavy").await.unwrap(), heavy);
    for bad in [0, -1, 1001] {
        let limits = TenantLimits {
            weight: bad,
            ..TenantLimits::default()
        };
        assert_eq!(
            field_of(s.set_tenant_limits("heavy", &limits).await),
            "weight",
            "weight {bad}"
        );
        assert_eq!(
            field_of(s.create_tenant("other", &limits).await),
            "weight",
            "weight {bad}"
        );
    }
    assert_eq!(s.tenant_limits("heavy").await.unwrap(), heavy, "unchanged");
    assert!(s.tenant_limits("other").await.unwrap_err().is_not_found());
}

async fn pending_items_skips_items_with_results(s: Fixture) {
    let (_, added, run) = claimed_run(&s, 7, "p").await;
    let done = [0usize, 2, 3, 6];
    let batch: Vec<NewResult> = done
        .iter()
        .map(|&i| result_for(&added[i], i as i64, None))
        .collect();
    s.write_results(&run.id, &Claim::of("p", &run), batch)
        .await
        .unwrap();
    let first = s.pending_items(T, &run.id, None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|i| &i.id).collect::<Vec<_>>(),
        [&added[1].id, &added[4].id]
    );
    let rest = s
        .pending_items(T, &run.id, Some(first[1].position), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|i| &i.id).collect::<Vec<_>>(),
        [&added[5].id]
    );
    assert!(
        s.pending_items(T, &run.id, Some(rest[0].position), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn paging_crosses_long_stretches_of_done_or_deleted_items(s: Fixture) {
    let (ds, added, run) = claimed_run(&s, 2_500, "long").await;
    let done: Vec<NewResult> = (0..2_000)
        .filter(|&i| i != 1_200)
        .map(|i| result_for(&added[i], i as i64, None))
        .collect();
    for chunk in done.chunks(500) {
        s.write_results(&run.id, &Claim::of("long", &run), chunk.to_vec())
            .await
            .unwrap();
    }
    let first = s.pending_items(T, &run.id, None, 3).await.unwrap();
    let positions: Vec<i64> = first.iter().map(|i| i.position).collect();
    assert_eq!(positions, [1_200, 2_000, 2_001]);
    let rest = s
        .pending_items(T, &run.id, Some(2_001), 1_000)
        .await
        .unwrap();
    assert_eq!(rest.len(), 498);
    assert_eq!(rest.last().unwrap().position, 2_499);

    // Items of a version with a long deleted stretch in the middle.
    let gone: Vec<String> = added[10..1_600].iter().map(|i| i.id.clone()).collect();
    assert_eq!(s.delete_items(T, &ds.id, &gone).await.unwrap(), 1_590);
    let page = s
        .items_at_version(T, &ds.id, ds.version + 1, Some(5), 6)
        .await
        .unwrap();
    let positions: Vec<i64> = page.iter().map(|i| i.position).collect();
    assert_eq!(positions, [6, 7, 8, 9, 1_600, 1_601]);
    assert!(
        s.items_at_version(T, &ds.id, ds.version + 1, Some(2_499), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn cancel_transitions(s: Fixture) {
    let (ds, _) = dataset_with(&s, "cancel", 3).await;
    let pending = s.create_run(T, new_run(&ds)).await.unwrap();
    let cancelled = s.request_cancel(T, &pending.id).await.unwrap();
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert!(cancelled.completed_at.is_some());
    assert_eq!(cancelled.skipped_count, 3);
    assert_conflict(s.request_cancel(T, &pending.id).await);
    assert!(
        s.claim_next_run("o", LEASE, &[]).await.unwrap().is_none(),
        "a cancelled run is never claimed"
    );

    let running = s.create_run(T, new_run(&ds)).await.unwrap();
    let running = s.claim_run(T, &running.id, "o", LEASE).await.unwrap();
    let flagged = s.request_cancel(T, &running.id).await.unwrap();
    assert_eq!(flagged.status, RunStatus::Running);
    assert!(flagged.cancel_requested);
    assert!(
        s.renew_lease(&running.id, &Claim::of("o", &running), LEASE)
            .await
            .unwrap()
            .cancel_requested
    );
    let done = s
        .finish_run(
            &running.id,
            &Claim::of("o", &running),
            RunStatus::Cancelled,
            None,
        )
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Cancelled);
    assert_conflict(s.request_cancel(T, &running.id).await);
}

async fn finish_run_counts_exactly(s: Fixture) {
    let (_, added, run) = claimed_run(&s, 5, "f").await;
    assert_lease_lost(
        s.finish_run(
            &run.id,
            &Claim::of("intruder", &run),
            RunStatus::Completed,
            None,
        )
        .await,
    );
    assert_eq!(
        field_of(
            s.finish_run(&run.id, &Claim::of("f", &run), RunStatus::Running, None)
                .await
        ),
        "status"
    );
    s.write_results(
        &run.id,
        &Claim::of("f", &run),
        vec![
            result_for(&added[0], 0, None),
            result_for(&added[1], 1, Some("bad")),
            result_for(&added[2], 2, None),
        ],
    )
    .await
    .unwrap();
    let done = s
        .finish_run(&run.id, &Claim::of("f", &run), RunStatus::Completed, None)
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(
        (done.succeeded_count, done.failed_count, done.skipped_count),
        (2, 1, 2)
    );
    assert!(done.completed_at.is_some());
    assert_eq!(done, s.get_run(T, &run.id).await.unwrap());
    // Finalized: no more writes, no second finish.
    assert_lease_lost(
        s.write_results(
            &run.id,
            &Claim::of("f", &run),
            vec![result_for(&added[3], 3, None)],
        )
        .await,
    );
    assert_conflict(
        s.finish_run(
            &run.id,
            &Claim::of("f", &run),
            RunStatus::Failed,
            Some("late".into()),
        )
        .await,
    );
    assert_eq!(
        s.get_run(T, &run.id).await.unwrap().status,
        RunStatus::Completed
    );
}

async fn fail_run_marks_setup_failures(s: Fixture) {
    let (ds, _) = dataset_with(&s, "setup", 2).await;
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    let failed = s
        .fail_run(T, &run.id, "Target not found: plugin/nope")
        .await
        .unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("Target not found: plugin/nope")
    );
    assert_eq!(failed.skipped_count, 2);
    assert!(failed.completed_at.is_some());
    assert_conflict(s.fail_run(T, &run.id, "again").await);
    assert_not_found(s.fail_run(T, "no-such-run", "x").await);

    // Runs: listing, per dataset, newest first, and custom ids.
    let mut custom = new_run(&ds);
    custom.id = Some("run-custom-1".into());
    let c = s.create_run(T, custom.clone()).await.unwrap();
    assert_eq!(c.id, "run-custom-1");
    assert_eq!(c.scorer_ids, ["exact", "len"]);
    assert_eq!(c.config, json!({"maxConcurrency": 4}));
    assert_conflict(s.create_run(T, custom).await);
    let mut bad = new_run(&ds);
    bad.dataset_version = 99;
    assert_not_found(s.create_run(T, bad).await);
    let listed = s.list_runs(T, Some(&ds.id), Page::default()).await.unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["run-custom-1", run.id.as_str()]
    );
    assert_not_found(
        s.list_runs(T, Some("no-such-dataset"), Page::default())
            .await,
    );
}

async fn results_stream_after_seq(s: Fixture) {
    let (_, added, run) = claimed_run(&s, 5, "st").await;
    // Written out of dataset order: the stream follows write order.
    for i in [3usize, 0, 4] {
        s.write_results(
            &run.id,
            &Claim::of("st", &run),
            vec![result_for(&added[i], i as i64, None)],
        )
        .await
        .unwrap();
    }
    let all = s.results_after_seq(T, &run.id, 0, 100).await.unwrap();
    let order: Vec<i64> = all.iter().map(|(_, r)| r.item_index).collect();
    assert_eq!(order, [3, 0, 4]);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "seq increases");
    assert_eq!(all[0].1.scores.len(), 2);
    let after_first = s.results_after_seq(T, &run.id, all[0].0, 1).await.unwrap();
    assert_eq!(after_first.len(), 1);
    assert_eq!(after_first[0].1.item_index, 0);
    let tail = s.results_after_seq(T, &run.id, all[2].0, 10).await.unwrap();
    assert!(tail.is_empty());
}

/// An outline carries the token usage of the target's metadata, read in
/// the database; metadata that plugins filled with anything else gives no
/// usage and no error (one bad item must not break a run's summary).
async fn outlines_read_token_usage_and_skip_what_is_not_a_count(s: Fixture) {
    let (_, added, run) = claimed_run(&s, 7, "w1").await;
    let metadata = [
        Some(json!({"usage": {"promptTokens": 6, "completionTokens": 4, "totalTokens": 10}})),
        Some(json!({"usage": {"prompt_tokens": 3, "completion_tokens": 2}})),
        Some(json!({"usage": {"totalTokens": "ten"}})),
        Some(json!({"usage": [1, 2, 3]})),
        Some(json!("usage")),
        Some(json!([{"usage": 1}])),
        None,
    ];
    let batch: Vec<NewResult> = added
        .iter()
        .zip(metadata)
        .enumerate()
        .map(|(i, (it, m))| NewResult {
            target_metadata: m,
            ..result_for(it, i as i64, None)
        })
        .collect();
    s.write_results(&run.id, &Claim::of("w1", &run), batch)
        .await
        .unwrap();
    let mut outlines = s
        .result_outlines_after_seq(T, &run.id, 0, 100)
        .await
        .unwrap();
    outlines.sort_by_key(|(_, o)| o.item_index);
    let usage: Vec<Option<TokenUsage>> = outlines.iter().map(|(_, o)| o.usage).collect();
    let u = |p, c, t| {
        Some(TokenUsage {
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: t,
        })
    };
    assert_eq!(
        usage,
        vec![u(6, 4, 10), u(3, 2, 5), None, None, None, None, None]
    );
}

async fn deletes_cascade_and_refuse_active_runs(s: Fixture) {
    let (ds, added, run) = claimed_run(&s, 3, "d").await;
    s.write_results(
        &run.id,
        &Claim::of("d", &run),
        vec![result_for(&added[0], 0, None)],
    )
    .await
    .unwrap();
    assert_conflict(s.delete_run(T, &run.id).await);
    assert_conflict(s.delete_dataset(T, &ds.id).await);
    s.finish_run(&run.id, &Claim::of("d", &run), RunStatus::Completed, None)
        .await
        .unwrap();
    s.delete_run(T, &run.id).await.unwrap();
    assert_not_found(s.get_run(T, &run.id).await);
    assert_not_found(s.list_results(T, &run.id, Page::default()).await);

    let second = s.create_run(T, new_run(&ds)).await.unwrap();
    s.request_cancel(T, &second.id).await.unwrap();
    s.delete_dataset(T, &ds.id).await.unwrap();
    assert_not_found(s.get_run(T, &second.id).await);
    assert_not_found(s.get_item(T, &ds.id, &added[0].id).await);
    assert_not_found(
        s.list_item_versions(T, &ds.id, &added[0].id, Page::default())
            .await,
    );
}

// ---------------------------------------------------------------- plugins

fn plugin_record(id: &str, kind: PluginKind) -> PluginRecord {
    PluginRecord {
        id: id.into(),
        tenant_id: String::new(),
        kind,
        name: format!("{id} plugin"),
        description: "test".into(),
        digest: "sha256:00".into(),
        contract_version: "0.1.0".into(),
        size: 0,
        created_at: Utc::now(),
    }
}

async fn plugin_bytes_round_trip(s: Fixture) {
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let rec = s
        .register_plugin(
            T,
            plugin_record("exact-match", PluginKind::Scorer),
            bytes.clone(),
        )
        .await
        .unwrap();
    assert_eq!(rec.size, 100_000);
    assert_eq!(rec.tenant_id, T);
    assert_eq!(s.get_plugin(T, "exact-match").await.unwrap(), rec);
    assert_eq!(s.plugin_bytes(T, "exact-match").await.unwrap(), bytes);

    // Same id again: replaced.
    let mut v2 = plugin_record("exact-match", PluginKind::Scorer);
    v2.digest = "sha256:11".into();
    s.register_plugin(T, v2, vec![9, 9]).await.unwrap();
    assert_eq!(
        s.get_plugin(T, "exact-match").await.unwrap().digest,
        "sha256:11"
    );
    assert_eq!(s.plugin_bytes(T, "exact-match").await.unwrap(), [9, 9]);

    s.register_plugin(T, plugin_record("echo", PluginKind::Target), vec![1])
        .await
        .unwrap();
    // A kind other than scorer or target cannot reach the store: it is
    // refused where a record is read from JSON.
    let weird = json!({"id": "weird", "kind": "agent", "name": "w", "description": "",
        "digest": "sha256:00", "contractVersion": "0.1.0", "size": 1,
        "createdAt": "2026-01-01T00:00:00Z"});
    let err = serde_json::from_value::<PluginRecord>(weird).unwrap_err();
    assert!(err.to_string().contains("agent"), "{err}");
    let listed = s.list_plugins(T, Page::default()).await.unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>(),
        ["echo", "exact-match"]
    );
    s.delete_plugin(T, "echo").await.unwrap();
    assert_not_found(s.get_plugin(T, "echo").await);
    assert_not_found(s.delete_plugin(T, "echo").await);
}

// ---------------------------------------------------------------- scale and limits

async fn add_ten_thousand_items_in_one_call(s: Fixture) {
    let ds = s.create_dataset(T, new_dataset("big")).await.unwrap();
    let added = s.add_items(T, &ds.id, items(0..10_000)).await.unwrap();
    assert_eq!(added.len(), 10_000);
    let ids: HashSet<&str> = added.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids.len(), 10_000);
    let positions: Vec<i64> = added.iter().map(|i| i.position).collect();
    assert_eq!(positions, (0..10_000).collect::<Vec<i64>>());
    let ds = s.get_dataset(T, &ds.id).await.unwrap();
    assert_eq!((ds.version, ds.item_count), (1, 10_000));
    assert_eq!(
        s.count_items_at_version(T, &ds.id, 1).await.unwrap(),
        10_000
    );
    let tail = s
        .items_at_version(T, &ds.id, 1, Some(9_997), 10)
        .await
        .unwrap();
    assert_eq!(tail, added[9_998..]);
    // A run over it is created without touching the items.
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    assert_eq!(run.total_items, 10_000);
    assert_eq!(
        s.pending_items(T, &run.id, None, 5).await.unwrap(),
        added[..5]
    );
}

/// Sends `batches` of items (and `Done` when `finish`) into a streamed add.
async fn stream_items(
    s: &Fixture,
    ds: &str,
    batches: Vec<Vec<NewItem>>,
    finish: bool,
) -> Result<StreamedItems, StoreError> {
    let (feed, rx) = tokio::sync::mpsc::channel(1);
    let send = async move {
        for b in batches {
            if feed.send(ItemFeed::Batch(b)).await.is_err() {
                return;
            }
        }
        if finish {
            let _ = feed.send(ItemFeed::Done).await;
        }
    };
    let (added, ()) = tokio::join!(s.add_items_streamed(T, ds, rx), send);
    added
}

async fn streamed_items_land_together_or_not_at_all(s: Fixture) {
    let (ds, first) = dataset_with(&s, "streamed", 3).await;
    // Three batches: one version, positions and errors counted across them.
    let batches = vec![items(10..1_010), items(1_010..2_010), items(2_010..2_510)];
    let added = stream_items(&s, &ds.id, batches, true).await.unwrap();
    assert_eq!(
        added,
        StreamedItems {
            added: 2_500,
            version: 2
        }
    );
    let now = s.get_dataset(T, &ds.id).await.unwrap();
    assert_eq!((now.version, now.item_count), (2, 2_503));
    let all = all_items_at(&s, &ds.id, 2).await;
    assert_eq!(all.len(), 2_503);
    assert_eq!(all[..3], first[..]);
    let inputs: Vec<&Value> = all[3..].iter().map(|i| &i.input).collect();
    let expected: Vec<Value> = items(10..2_510).into_iter().map(|i| i.input).collect();
    assert_eq!(inputs, expected.iter().collect::<Vec<_>>());
    assert!(all.windows(2).all(|w| w[0].position < w[1].position));

    // A feed that closes without `Done` (its reader failed) adds nothing.
    let err = stream_items(&s, &ds.id, vec![items(0..700), items(700..900)], false)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Validation { .. }), "{err:?}");
    let after = s.get_dataset(T, &ds.id).await.unwrap();
    assert_eq!((after.version, after.item_count), (2, 2_503));
    assert_eq!(s.count_items_at_version(T, &ds.id, 2).await.unwrap(), 2_503);

    // A batch past the tenant's item limit rolls back the batches before it.
    s.upsert_tenant(&Tenant {
        max_items_per_dataset: 3_000,
        ..Tenant::with_defaults(T)
    })
    .await
    .unwrap();
    let err = stream_items(&s, &ds.id, vec![items(0..400), items(400..800)], true)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::LimitExceeded { limit: 3_000, .. }),
        "{err:?}"
    );
    let after = s.get_dataset(T, &ds.id).await.unwrap();
    assert_eq!((after.version, after.item_count), (2, 2_503));

    // An empty feed changes nothing.
    let none = stream_items(&s, &ds.id, vec![], true).await.unwrap();
    assert_eq!(
        none,
        StreamedItems {
            added: 0,
            version: 2
        }
    );
}

async fn item_limit_per_dataset(s: Fixture) {
    s.upsert_tenant(&Tenant {
        max_items_per_dataset: 5,
        ..Tenant::with_defaults(T)
    })
    .await
    .unwrap();
    let (ds, _) = dataset_with(&s, "small", 4).await;
    match s.add_items(T, &ds.id, items(0..2)).await {
        Err(StoreError::LimitExceeded { limit: 5, .. }) => {}
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    s.add_items(T, &ds.id, items(0..1)).await.unwrap();
    assert_eq!(s.get_dataset(T, &ds.id).await.unwrap().item_count, 5);
}

// ---------------------------------------------------------------- stored names

/// Sets a run's stored `target_type` behind the store's back (a database
/// edited by hand, or written by a newer version).
async fn set_stored_target_type(s: &Fixture, run_id: &str, name: &str) {
    const SQL: &str = "UPDATE runs SET target_type = $1 WHERE id = $2";
    if s.backend() == "sqlite" {
        let pool = sqlx::SqlitePool::connect(&s.url).await.unwrap();
        sqlx::query(SQL)
            .bind(name)
            .bind(run_id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&s.url).await.unwrap();
        sqlx::query(SQL)
            .bind(name)
            .bind(run_id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

async fn unknown_stored_target_type_is_corrupt(s: Fixture) {
    let (ds, _) = dataset_with(&s, "stored-names", 2).await;
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    assert_eq!(
        s.get_run(T, &run.id).await.unwrap().target_type,
        TargetType::Plugin
    );
    set_stored_target_type(&s, &run.id, "agent").await;
    match s.get_run(T, &run.id).await {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("agent"), "{m}"),
        other => panic!("expected a corrupt-data error, got {other:?}"),
    }
    set_stored_target_type(&s, &run.id, "scorer").await;
    assert_eq!(
        s.get_run(T, &run.id).await.unwrap().target_type,
        TargetType::Scorer
    );
}

async fn api_keys_are_found_by_hash_listed_and_revoked(s: Fixture) {
    use assay_store::tenancy::{authenticate, hash_token, issue_api_key};
    let store: &dyn ApiKeyStore = s.store.as_ref();
    s.create_tenant("team-a", &TenantLimits::default())
        .await
        .unwrap();
    let (admin, token) = issue_api_key(store, "team-a", Role::Admin, Some("alice".into()))
        .await
        .unwrap();
    assert!(token.starts_with(&admin.prefix));
    let (viewer, _) = issue_api_key(store, T, Role::Viewer, None).await.unwrap();
    let found = s.api_key_by_hash(&hash_token(&token)).await.unwrap();
    assert_eq!(found.as_ref(), Some(&admin));
    assert_eq!(
        authenticate(store, &token).await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(authenticate(store, "assay_nope").await.unwrap(), None);
    assert_eq!(
        s.api_key_by_hash(&hash_token("assay_nope")).await.unwrap(),
        None
    );
    // A key for a tenant that does not exist is refused.
    assert!(
        issue_api_key(store, "nobody", Role::Member, None)
            .await
            .unwrap_err()
            .is_not_found()
    );

    let all = s.list_api_keys(None).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        s.list_api_keys(Some("team-a")).await.unwrap(),
        vec![admin.clone()]
    );

    // Another tenant cannot revoke it; the operator (no tenant) can.
    assert!(
        s.revoke_api_key(Some(T), &admin.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(
        authenticate(store, &token).await.unwrap(),
        Some(admin.clone())
    );
    let revoked = s.revoke_api_key(None, &admin.id).await.unwrap();
    let at = revoked.revoked_at.expect("revoked");
    assert_eq!(authenticate(store, &token).await.unwrap(), None);
    let again = s.revoke_api_key(Some("team-a"), &admin.id).await.unwrap();
    assert_eq!(
        again.revoked_at,
        Some(at),
        "the first revocation time stays"
    );
    assert!(
        s.revoke_api_key(None, "no-such-key")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(
        s.list_api_keys(Some(T)).await.unwrap()[0].id,
        viewer.id,
        "other keys are untouched"
    );
}

async fn tenants_are_created_by_name_once_and_their_limits_edited(s: Fixture) {
    let mut limits = TenantLimits::default();
    limits.set("queued-runs", "7").unwrap();
    let info = s.create_tenant("team-a", &limits).await.unwrap();
    assert_eq!(info.limits.queued_runs, 7);
    match s.create_tenant("team-a", &TenantLimits::default()).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("team-a"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    for bad in ["", "a b", SHARED_TENANT, &"x".repeat(65)] {
        assert_eq!(
            field_of(s.create_tenant(bad, &TenantLimits::default()).await),
            "tenant",
            "{bad:?}"
        );
    }
    let ids: Vec<_> = s
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(
        ids,
        ["default", "team-a"],
        "the shared namespace is no tenant"
    );
    assert_eq!(s.tenant_limits("team-a").await.unwrap(), limits);
    let defaults = s.tenant_limits(T).await.unwrap();
    assert_eq!(defaults, TenantLimits::default());

    let mut changed = limits;
    changed.items_in_flight = 500;
    changed.stored_bytes = 1 << 20;
    s.set_tenant_limits("team-a", &changed).await.unwrap();
    assert_eq!(s.tenant_limits("team-a").await.unwrap(), changed);
    // The runner's view of the same limits agrees.
    let t = s.get_tenant("team-a").await.unwrap();
    assert_eq!(t.max_concurrency, 500);
    assert!(s.tenant_limits("nobody").await.unwrap_err().is_not_found());
    assert!(
        s.set_tenant_limits("nobody", &changed)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        s.set_tenant_limits(SHARED_TENANT, &changed)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

async fn tenant_usage_counts_what_a_tenant_holds(s: Fixture) {
    assert_eq!(s.tenant_usage(T).await.unwrap(), TenantUsage::default());
    let (ds, added) = dataset_with(&s, "d", 3).await;
    let usage = s.tenant_usage(T).await.unwrap();
    assert_eq!(usage.datasets, 1);
    let bytes: i64 = items(0..3)
        .iter()
        .map(|i| {
            assay_store::tenancy::item_bytes(
                &i.input,
                i.expected_output.as_ref(),
                i.context.as_ref(),
            )
        })
        .sum();
    assert_eq!(usage.stored_bytes, bytes);
    // An update stores a new version: its bytes count too.
    let patch = ItemPatch {
        input: Some(json!("0123456789")),
        ..Default::default()
    };
    let updated = s.update_item(T, &ds.id, &added[0].id, patch).await.unwrap();
    let grown = s.tenant_usage(T).await.unwrap().stored_bytes;
    assert_eq!(
        grown,
        bytes
            + assay_store::tenancy::item_bytes(
                &updated.input,
                updated.expected_output.as_ref(),
                updated.context.as_ref()
            )
    );
    s.register_plugin(T, plugin_record("echo", PluginKind::Target), vec![0; 1000])
        .await
        .unwrap();
    s.register_plugin(
        SHARED_TENANT,
        plugin_record("shared", PluginKind::Scorer),
        vec![0; 50],
    )
    .await
    .unwrap();
    s.create_run(T, new_run(&s.get_dataset(T, &ds.id).await.unwrap()))
        .await
        .unwrap();
    let usage = s.tenant_usage(T).await.unwrap();
    assert_eq!(
        (usage.plugins, usage.plugin_bytes),
        (1, 1000),
        "shared plugins are not the tenant's"
    );
    assert_eq!((usage.queued_runs, usage.active_runs), (1, 0));
    s.claim_next_run("me", LEASE, &[]).await.unwrap().unwrap();
    let usage = s.tenant_usage(T).await.unwrap();
    assert_eq!((usage.queued_runs, usage.active_runs), (0, 1));
    s.create_tenant("other", &TenantLimits::default())
        .await
        .unwrap();
    assert_eq!(
        s.tenant_usage("other").await.unwrap(),
        TenantUsage::default()
    );
}

async fn stored_bytes_limit_refuses_items_and_changes_nothing(s: Fixture) {
    let (ds, _) = dataset_with(&s, "d", 2).await;
    let used = s.tenant_usage(T).await.unwrap().stored_bytes;
    let mut limits = s.tenant_limits(T).await.unwrap();
    limits.stored_bytes = used + 40;
    s.set_tenant_limits(T, &limits).await.unwrap();
    let big = vec![NewItem {
        input: json!("x".repeat(60)),
        expected_output: None,
        context: None,
    }];
    match s.add_items(T, &ds.id, big).await {
        Err(StoreError::LimitExceeded { key, limit, .. }) => {
            assert_eq!(key, "stored-bytes");
            assert_eq!(limit, used + 40);
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    let after = s.get_dataset(T, &ds.id).await.unwrap();
    assert_eq!(
        (after.item_count, after.version),
        (ds.item_count, ds.version)
    );
    assert_eq!(s.tenant_usage(T).await.unwrap().stored_bytes, used);
    // Smaller items still fit.
    s.add_items(T, &ds.id, vec![item(7)]).await.unwrap();
}

async fn shared_plugins_are_visible_to_every_tenant(s: Fixture) {
    s.create_tenant("team-a", &TenantLimits::default())
        .await
        .unwrap();
    for id in ["echo", "exact-match"] {
        let kind = if id == "echo" {
            PluginKind::Target
        } else {
            PluginKind::Scorer
        };
        s.register_plugin(SHARED_TENANT, plugin_record(id, kind), vec![1])
            .await
            .unwrap();
    }
    // team-a has its own `echo` (registered before the shared one, say).
    let mut own = plugin_record("echo", PluginKind::Target);
    own.digest = "sha256:own".into();
    s.register_plugin("team-a", own, vec![2]).await.unwrap();
    s.register_plugin("team-a", plugin_record("mine", PluginKind::Scorer), vec![3])
        .await
        .unwrap();

    let seen = |tenant: &'static str| {
        let s = &s;
        async move {
            s.list_visible_plugins(tenant, Page::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|p| (p.id, p.tenant_id))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        seen("team-a").await,
        [
            ("echo".to_string(), "team-a".to_string()),
            ("exact-match".into(), SHARED_TENANT.into()),
            ("mine".into(), "team-a".into()),
        ]
    );
    assert_eq!(
        seen(T).await,
        [
            ("echo".to_string(), SHARED_TENANT.to_string()),
            ("exact-match".into(), SHARED_TENANT.into()),
        ]
    );
    let page = s
        .list_visible_plugins("team-a", Page::new(1, 2))
        .await
        .unwrap();
    assert_eq!((page.total, page.items.len(), page.has_more), (3, 1, false));
    // The tenant-scoped calls do not see shared plugins: callers decide.
    assert!(s.get_plugin(T, "echo").await.unwrap_err().is_not_found());
}

async fn plugin_grants_are_per_tenant_and_go_with_the_plugin(s: Fixture) {
    s.create_tenant("team-a", &TenantLimits::default())
        .await
        .unwrap();
    s.register_plugin(
        SHARED_TENANT,
        plugin_record("echo", PluginKind::Target),
        vec![1],
    )
    .await
    .unwrap();
    s.register_plugin(T, plugin_record("mine", PluginKind::Scorer), vec![2])
        .await
        .unwrap();

    // Nothing granted yet.
    assert_eq!(s.get_plugin_grant(T, "echo").await.unwrap(), None);
    // An unknown plugin, or another tenant's own plugin, cannot be granted.
    assert!(matches!(
        s.set_plugin_grant(T, "nope", "{}", "cli").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.set_plugin_grant("team-a", "mine", "{}", "cli").await,
        Err(StoreError::NotFound { .. })
    ));

    // A shared plugin is granted per tenant.
    let a = r#"{"hosts":["api.openai.com"]}"#;
    let b = r#"{"hosts":["127.0.0.1:8080"],"allowHttp":true}"#;
    let set = s.set_plugin_grant(T, "echo", a, "cli").await.unwrap();
    assert_eq!(set.grant_json, a);
    assert_eq!(set.granted_by, "cli");
    s.set_plugin_grant("team-a", "echo", b, "key:k1")
        .await
        .unwrap();
    let got = s.get_plugin_grant(T, "echo").await.unwrap().unwrap();
    assert_eq!(got, set);
    let got_a = s.get_plugin_grant("team-a", "echo").await.unwrap().unwrap();
    assert_eq!(
        (got_a.grant_json.as_str(), got_a.granted_by.as_str()),
        (b, "key:k1")
    );

    // Set again: replaced.
    s.set_plugin_grant(T, "echo", b, "cli").await.unwrap();
    assert_eq!(
        s.get_plugin_grant(T, "echo")
            .await
            .unwrap()
            .unwrap()
            .grant_json,
        b
    );

    // Delete: gone; a second delete is NotFound.
    s.delete_plugin_grant(T, "echo").await.unwrap();
    assert_eq!(s.get_plugin_grant(T, "echo").await.unwrap(), None);
    assert!(matches!(
        s.delete_plugin_grant(T, "echo").await,
        Err(StoreError::NotFound { .. })
    ));

    // Deleting a tenant's plugin deletes its grant: a new plugin of the
    // same id starts with no network.
    s.set_plugin_grant(T, "mine", a, "cli").await.unwrap();
    s.delete_plugin(T, "mine").await.unwrap();
    s.register_plugin(T, plugin_record("mine", PluginKind::Scorer), vec![3])
        .await
        .unwrap();
    assert_eq!(s.get_plugin_grant(T, "mine").await.unwrap(), None);

    // Deleting the shared plugin deletes every tenant's grant of it.
    s.delete_plugin(SHARED_TENANT, "echo").await.unwrap();
    assert_eq!(s.get_plugin_grant("team-a", "echo").await.unwrap(), None);
}

async fn secrets_are_set_listed_read_sealed_and_deleted(s: Fixture) {
    s.create_tenant("team-a", &TenantLimits::default())
        .await
        .unwrap();
    let sealed = |name: &str, c: u8| SealedSecret {
        name: name.into(),
        ciphertext: vec![c; 40],
        nonce: vec![c; 24],
    };
    let first = s.set_secret(T, sealed("OPENAI_API_KEY", 1)).await.unwrap();
    assert_eq!(first.name, "OPENAI_API_KEY");
    assert_eq!(first.created_at, first.updated_at);
    s.set_secret(T, sealed("_OTHER", 2)).await.unwrap();
    s.set_secret("team-a", sealed("OPENAI_API_KEY", 3))
        .await
        .unwrap();

    // Replace keeps created_at and changes the ciphertext.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = s.set_secret(T, sealed("OPENAI_API_KEY", 4)).await.unwrap();
    assert_eq!(again.created_at, first.created_at);
    assert!(again.updated_at > first.updated_at);

    let names: Vec<String> = s
        .list_secrets(T)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["OPENAI_API_KEY", "_OTHER"]);

    // Reads only what is asked for, of the tenant asked.
    let want = vec!["OPENAI_API_KEY".to_string(), "MISSING".to_string()];
    let got = s.sealed_secrets(T, &want).await.unwrap();
    assert_eq!(got, vec![sealed("OPENAI_API_KEY", 4)]);
    let got = s.sealed_secrets("team-a", &want).await.unwrap();
    assert_eq!(got, vec![sealed("OPENAI_API_KEY", 3)]);
    assert!(s.sealed_secrets(T, &[]).await.unwrap().is_empty());

    // Hostile names are refused and store nothing.
    for bad in ["", "lower", "1ABC", "A-B", "A B", "ÄB", &"A".repeat(129)] {
        assert!(
            matches!(
                s.set_secret(T, sealed(bad, 5)).await,
                Err(StoreError::Validation { .. })
            ),
            "{bad:?}"
        );
    }
    s.set_secret(T, sealed(&"A".repeat(128), 5)).await.unwrap();
    assert_eq!(s.list_secrets(T).await.unwrap().len(), 3);
    // An unknown tenant cannot hold secrets.
    assert!(matches!(
        s.set_secret("nobody", sealed("X", 1)).await,
        Err(StoreError::NotFound { .. })
    ));

    s.delete_secret(T, "_OTHER").await.unwrap();
    assert!(matches!(
        s.delete_secret(T, "_OTHER").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(s.list_secrets("team-a").await.unwrap().len(), 1);
}

// ---------------------------------------------------------------- re-scoring

async fn rescoring_runs_link_to_a_finished_parent_and_read_its_outputs(s: Fixture) {
    let (ds, added, parent) = claimed_run(&s, 3, "w1").await;
    // Item 0 succeeded, item 1 failed, item 2 has no result.
    s.write_results(
        &parent.id,
        &Claim::of("w1", &parent),
        vec![
            result_for(&added[0], 0, None),
            result_for(&added[1], 1, Some("boom")),
        ],
    )
    .await
    .unwrap();
    let child = || NewRun {
        scorer_ids: vec!["other".into()],
        parent_run_id: Some(parent.id.clone()),
        ..new_run(&ds)
    };
    // A run still producing outputs cannot be re-scored.
    assert!(matches!(
        s.create_run(T, child()).await,
        Err(StoreError::Conflict(m)) if m.contains("only a finished run")
    ));
    s.finish_run(
        &parent.id,
        &Claim::of("w1", &parent),
        RunStatus::Completed,
        None,
    )
    .await
    .unwrap();

    // The parent must exist for the tenant and be of the same dataset
    // version.
    let unknown = NewRun {
        parent_run_id: Some("no-such-run".into()),
        ..child()
    };
    assert!(s.create_run(T, unknown).await.unwrap_err().is_not_found());
    let (other_ds, _) = dataset_with(&s, "other", 3).await;
    let elsewhere = NewRun {
        parent_run_id: Some(parent.id.clone()),
        ..new_run(&other_ds)
    };
    assert_eq!(field_of(s.create_run(T, elsewhere).await), "parentRunId");

    let run = s.create_run(T, child()).await.unwrap();
    assert_eq!(run.parent_run_id.as_deref(), Some(parent.id.as_str()));
    let stored = s.get_run(T, &run.id).await.unwrap();
    assert_eq!(stored.parent_run_id.as_deref(), Some(parent.id.as_str()));
    assert_eq!(
        serde_json::to_value(&stored).unwrap()["parentRunId"],
        json!(parent.id)
    );
    let listed = s
        .list_runs(T, Some(&ds.id), Page::new(0, 10))
        .await
        .unwrap();
    let of = |id: &str| listed.items.iter().find(|r| r.id == id).unwrap().clone();
    assert_eq!(of(&run.id).parent_run_id, Some(parent.id.clone()));
    assert_eq!(of(&parent.id).parent_run_id, None);

    // The parent's outputs, by item index, failures included.
    let records = s.target_records(T, &parent.id, 0, 2).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].item_id, added[0].id);
    assert_eq!(records[0].item_index, 0);
    assert_eq!(
        records[0].output,
        Some(json!({"echo": added[0].input.clone()}))
    );
    assert_eq!(records[0].latency, 1.25);
    assert_eq!(records[0].trace_id.as_deref(), Some("trace-0"));
    assert_eq!(
        records[0].target_metadata.as_ref().unwrap()["model"],
        "stub-model"
    );
    assert_eq!(records[0].error, None);
    assert_eq!(records[1].item_id, added[1].id);
    assert_eq!(records[1].output, None);
    assert_eq!(records[1].error.as_deref(), Some("boom"));
    assert_eq!(records[1].error_kind.as_deref(), Some("failed"));
    let one = s.target_records(T, &parent.id, 1, 1).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].item_index, 1);
    // Another tenant's run is unknown.
    assert!(
        s.target_records("other-tenant", &parent.id, 0, 2)
            .await
            .unwrap_err()
            .is_not_found()
    );

    // The parent cannot be deleted while a re-scoring run may still read it.
    assert!(matches!(
        s.delete_run(T, &parent.id).await,
        Err(StoreError::Conflict(m)) if m.contains("re-scored")
    ));
    // Claimed by a scheduler, the run still names its parent.
    let (tenant, claimed) = s.claim_next_run("w2", LEASE, &[]).await.unwrap().unwrap();
    assert_eq!((tenant.as_str(), claimed.id.as_str()), (T, run.id.as_str()));
    assert_eq!(claimed.parent_run_id.as_deref(), Some(parent.id.as_str()));
    assert!(matches!(
        s.delete_run(T, &parent.id).await,
        Err(StoreError::Conflict(m)) if m.contains("re-scored")
    ));
    s.finish_run(
        &run.id,
        &Claim::of("w2", &claimed),
        RunStatus::Cancelled,
        None,
    )
    .await
    .unwrap();
    s.delete_run(T, &parent.id).await.unwrap();
    // The finished child keeps its results and names its (gone) parent.
    let kept = s.get_run(T, &run.id).await.unwrap();
    assert_eq!(kept.parent_run_id.as_deref(), Some(parent.id.as_str()));
}

async fn target_models_count_what_the_server_reported(s: Fixture) {
    let (_, added, run) = claimed_run(&s, 5, "w1").await;
    assert_eq!(s.target_models(T, &run.id).await.unwrap(), vec![]);
    let mut batch: Vec<NewResult> = added[..4]
        .iter()
        .enumerate()
        .map(|(i, it)| result_for(it, i as i64, (i == 1).then_some("boom")))
        .collect();
    // One answered by another model; one without a model in its metadata.
    batch[2].target_metadata = Some(json!({"model": "other-model-2024"}));
    batch[3].target_metadata = Some(json!({"usage": {"totalTokens": 3}}));
    let mut last = result_for(&added[4], 4, None);
    last.target_metadata = None;
    batch.push(last);
    s.write_results(&run.id, &Claim::of("w1", &run), batch)
        .await
        .unwrap();
    assert_eq!(
        s.target_models(T, &run.id).await.unwrap(),
        vec![
            ModelCount {
                model: "other-model-2024".into(),
                items: 1
            },
            ModelCount {
                model: "stub-model".into(),
                items: 1
            },
        ]
    );
    assert!(
        s.target_models("other-tenant", &run.id)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

// The output cache's tests live in their own file (same macro, both
// backends).
#[path = "cache_contract/mod.rs"]
mod cache_contract;

// ------------------------------------------------------------- repeats

/// Trial `trial` of `item`, scored `trial / 2` by `exact`.
fn trial_of(item: &DatasetItem, index: i64, trial: i64) -> NewResult {
    let mut r = result_for(item, index, None);
    r.trial = trial;
    r.scores[0].score = Some(trial as f64 / 2.0);
    r
}

async fn trials_of_a_run_with_repeats_are_results_of_their_own(s: Fixture) {
    let (ds, added) = dataset_with(&s, "trials", 3).await;
    let run = s
        .create_run(
            T,
            NewRun {
                total_items: 9,
                repeats: 3,
                ..new_run(&ds)
            },
        )
        .await
        .unwrap();
    assert_eq!(s.get_run(T, &run.id).await.unwrap().repeats, 3);
    let run = s.claim_run(T, &run.id, "tr", LEASE).await.unwrap();
    assert_eq!((run.repeats, run.total_items), (3, 9));

    // Item 0: every trial; item 1: trials 0 and 2; item 2: none.
    let batch = vec![
        trial_of(&added[0], 0, 2),
        trial_of(&added[0], 0, 0),
        trial_of(&added[1], 1, 2),
        trial_of(&added[0], 0, 1),
        trial_of(&added[1], 1, 0),
    ];
    let first = s
        .write_results(&run.id, &Claim::of("tr", &run), batch)
        .await
        .unwrap();
    assert_eq!((first.inserted, first.duplicates), (5, 0));
    // Exactly once per (item, trial): a trial written again is a duplicate.
    let again = s
        .write_results(
            &run.id,
            &Claim::of("tr", &run),
            vec![trial_of(&added[0], 0, 1)],
        )
        .await
        .unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 1));

    // Hostile batches: the same trial twice, a trial the run does not
    // have, a negative trial. Nothing of them is written.
    let twice = vec![trial_of(&added[2], 2, 0), trial_of(&added[2], 2, 0)];
    assert_eq!(
        field_of(
            s.write_results(&run.id, &Claim::of("tr", &run), twice)
                .await
        ),
        "results[1].itemId"
    );
    let beyond = vec![trial_of(&added[2], 2, 0), trial_of(&added[2], 2, 3)];
    match s
        .write_results(&run.id, &Claim::of("tr", &run), beyond)
        .await
    {
        Err(StoreError::Validation { field, message }) => {
            assert_eq!(field, "results[1].trial");
            assert!(message.contains("3 trials per item"), "{message}");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(
        field_of(
            s.write_results(
                &run.id,
                &Claim::of("tr", &run),
                vec![trial_of(&added[2], 2, -1)]
            )
            .await
        ),
        "results[0].trial"
    );

    let ids: Vec<&str> = added.iter().map(|i| i.id.as_str()).collect();
    let stored: HashSet<(String, i64)> = s
        .stored_trials(T, &run.id, &ids)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let expected: HashSet<(String, i64)> = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)]
        .into_iter()
        .map(|(i, t)| (added[i].id.clone(), t))
        .collect();
    assert_eq!(
        stored, expected,
        "item 2 has no trial: the hostile batches wrote nothing"
    );
    assert_not_found(s.stored_trials("other-tenant", &run.id, &ids).await);

    // Pending: the items with a trial still missing.
    let pending = s.pending_items(T, &run.id, None, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|i| &i.id).collect::<Vec<_>>(),
        [&added[1].id, &added[2].id]
    );

    // Reads: item then trial order, each trial with its own scores.
    let listed = s
        .list_results(T, &run.id, Page::default())
        .await
        .unwrap()
        .items;
    let order: Vec<(i64, i64)> = listed.iter().map(|r| (r.item_index, r.trial)).collect();
    assert_eq!(order, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)]);
    for r in &listed {
        assert_eq!(r.scores.len(), 2, "{r:?}");
        assert_eq!(r.scores[0].score, Some(r.trial as f64 / 2.0), "{r:?}");
    }
    let outlines = s
        .result_outlines_by_index(T, &run.id, -1, 100)
        .await
        .unwrap();
    let order: Vec<(i64, i64)> = outlines.iter().map(|o| (o.item_index, o.trial)).collect();
    assert_eq!(order, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)]);
    assert!(
        outlines
            .iter()
            .all(|o| o.scores[0].score == Some(o.trial as f64 / 2.0))
    );
    let records = s.target_records(T, &run.id, 1, 1).await.unwrap();
    assert_eq!(records.iter().map(|r| r.trial).collect::<Vec<_>>(), [0, 2]);
    // The score filter looks at each trial's own scores: only trial 0
    // scored below 0.5.
    let low = ResultFilter {
        failed_only: false,
        score_below: Some(ScoreBelow {
            scorer_id: "exact".into(),
            below: 0.5,
        }),
    };
    let got = s
        .filter_results(T, &run.id, &low, Page::default())
        .await
        .unwrap();
    assert_eq!(
        got.items
            .iter()
            .map(|r| (r.item_index, r.trial))
            .collect::<Vec<_>>(),
        [(0, 0), (1, 0)]
    );

    // Counters and the final counts are over trials.
    let live = s.get_run(T, &run.id).await.unwrap();
    assert_eq!(live.succeeded_count, 5);
    let done = s
        .finish_run(&run.id, &Claim::of("tr", &run), RunStatus::Cancelled, None)
        .await
        .unwrap();
    assert_eq!(
        (done.succeeded_count, done.failed_count, done.skipped_count),
        (5, 0, 4)
    );
}

async fn repeats_are_checked_when_a_run_is_created(s: Fixture) {
    let (ds, added) = dataset_with(&s, "repeats-checked", 2).await;
    assert_eq!(
        field_of(
            s.create_run(
                T,
                NewRun {
                    repeats: 0,
                    ..new_run(&ds)
                },
            )
            .await
        ),
        "repeats"
    );
    // A run without repeats has trial 0 only.
    let plain = s.create_run(T, new_run(&ds)).await.unwrap();
    assert_eq!(plain.repeats, 1);
    let plain = s.claim_run(T, &plain.id, "c", LEASE).await.unwrap();
    assert_eq!(
        field_of(
            s.write_results(
                &plain.id,
                &Claim::of("c", &plain),
                vec![trial_of(&added[0], 0, 1)]
            )
            .await
        ),
        "results[0].trial"
    );
    s.finish_run(
        &plain.id,
        &Claim::of("c", &plain),
        RunStatus::Completed,
        None,
    )
    .await
    .unwrap();
    // A re-scoring run grades every trial of its parent: same repeats.
    let child = NewRun {
        repeats: 2,
        total_items: 4,
        parent_run_id: Some(plain.id.clone()),
        ..new_run(&ds)
    };
    assert_eq!(field_of(s.create_run(T, child).await), "repeats");
    let child = NewRun {
        parent_run_id: Some(plain.id.clone()),
        ..new_run(&ds)
    };
    assert_eq!(s.create_run(T, child).await.unwrap().repeats, 1);
}

// ------------------------------------------------------------------ chunks

/// The lead claims the run; a helper joins it.
async fn lead_and_helper(s: &Fixture, n: usize) -> (Run, Vec<DatasetItem>, Claim, Claim) {
    let (ds, added) = dataset_with(s, "chunked", n).await;
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    let run = s.claim_run(T, &run.id, "lead", LEASE).await.unwrap();
    let lead = Claim::of("lead", &run);
    let helper = s.join_run(T, &run.id, "helper").await.unwrap();
    (run, added, lead, helper)
}

fn chunk(grant: ChunkGrant) -> (i64, i64) {
    match grant {
        ChunkGrant::Chunk { first, end } => (first, end),
        other => panic!("expected a chunk, got {other:?}"),
    }
}

async fn finishing_a_chunk_says_the_run_is_done_only_once_every_position_is(s: Fixture) {
    let (run, _, lead, _) = lead_and_helper(&s, 10).await;
    // Every chunk handed out is done, but positions 4..10 were never
    // handed out: the run is not done (a lead believing it would finish
    // the run with six items never executed).
    let a = chunk(s.claim_chunk(&run.id, &lead, 4, LEASE).await.unwrap());
    assert_eq!(
        s.finish_chunk(&run.id, &lead, a.0).await.unwrap(),
        ChunkDone::RunOpen
    );
    let b = chunk(s.claim_chunk(&run.id, &lead, 6, LEASE).await.unwrap());
    assert_eq!(b, (4, 10));
    assert_eq!(
        s.finish_chunk(&run.id, &lead, b.0).await.unwrap(),
        ChunkDone::AllDone
    );
    assert_eq!(
        s.claim_chunk(&run.id, &lead, 4, LEASE).await.unwrap(),
        ChunkGrant::Done,
        "the claim it saves would have said the same"
    );
}

async fn chunks_hand_out_every_position_once_across_claims(s: Fixture) {
    let (run, added, lead, helper) = lead_and_helper(&s, 10).await;
    let positions: Vec<i64> = added.iter().map(|i| i.position).collect();
    assert_eq!(positions, (0..10).collect::<Vec<i64>>());
    // A join is a claim of its own, and leaves the lead's lease alone.
    assert!(helper.number > lead.number);
    s.renew_lease(&run.id, &lead, LEASE).await.unwrap();
    assert_eq!(
        s.get_run(T, &run.id).await.unwrap().claim_number,
        lead.number
    );

    let a = chunk(s.claim_chunk(&run.id, &lead, 4, LEASE).await.unwrap());
    let b = chunk(s.claim_chunk(&run.id, &helper, 4, LEASE).await.unwrap());
    let c = chunk(s.claim_chunk(&run.id, &lead, 4, LEASE).await.unwrap());
    assert_eq!([a, b, c], [(0, 4), (4, 8), (8, 10)]);
    assert_eq!(
        s.claim_chunk(&run.id, &helper, 4, LEASE).await.unwrap(),
        ChunkGrant::Busy
    );
    // A chunk's pending items are its positions only.
    let in_b = s
        .pending_items_in(T, &run.id, Some(b.0 - 1), Some(b.1), 100)
        .await
        .unwrap();
    assert_eq!(in_b, added[4..8]);

    // Only the holder marks a chunk done.
    // Each says whether it was the run's last: the last chunk to be done,
    // whatever its position and holder.
    assert_lease_lost(s.finish_chunk(&run.id, &lead, b.0).await);
    assert_eq!(
        s.finish_chunk(&run.id, &helper, b.0).await.unwrap(),
        ChunkDone::RunOpen
    );
    assert_eq!(
        s.finish_chunk(&run.id, &lead, c.0).await.unwrap(),
        ChunkDone::RunOpen
    );
    assert_eq!(
        s.claim_chunk(&run.id, &helper, 4, LEASE).await.unwrap(),
        ChunkGrant::Busy
    );
    assert_eq!(
        s.finish_chunk(&run.id, &lead, a.0).await.unwrap(),
        ChunkDone::AllDone
    );
    assert_eq!(
        s.claim_chunk(&run.id, &lead, 4, LEASE).await.unwrap(),
        ChunkGrant::Done
    );

    // Joining a finished run is refused; chunks of it are not handed out.
    s.finish_run(&run.id, &lead, RunStatus::Completed, None)
        .await
        .unwrap();
    assert_conflict(s.join_run(T, &run.id, "late").await);
    assert_eq!(
        s.claim_chunk(&run.id, &lead, 4, LEASE).await.unwrap(),
        ChunkGrant::Stopped
    );
    assert_not_found(s.join_run("another-tenant", &run.id, "late").await);
}

async fn a_helper_writes_only_inside_the_chunks_it_holds(s: Fixture) {
    let (run, added, lead, helper) = lead_and_helper(&s, 6).await;
    let short = Duration::from_millis(50);
    let (first, end) = chunk(s.claim_chunk(&run.id, &helper, 3, short).await.unwrap());
    assert_eq!((first, end), (0, 3));
    s.write_results(&run.id, &helper, vec![result_for(&added[0], 0, None)])
        .await
        .unwrap();
    // Outside its chunks, even with items inside: nothing of the batch.
    assert_lease_lost(
        s.write_results(
            &run.id,
            &helper,
            vec![
                result_for(&added[1], 1, None),
                result_for(&added[3], 3, None),
            ],
        )
        .await,
    );
    // The lead holding the run's lease writes any item.
    s.write_results(&run.id, &lead, vec![result_for(&added[4], 4, None)])
        .await
        .unwrap();

    // The helper's lease lapses and the lead takes the chunk over: the
    // helper's writes are refused from then on.
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        chunk(s.claim_chunk(&run.id, &lead, 3, LEASE).await.unwrap()),
        (0, 3)
    );
    assert_lease_lost(
        s.write_results(&run.id, &helper, vec![result_for(&added[1], 1, None)])
            .await,
    );
    assert_lease_lost(s.finish_chunk(&run.id, &helper, 0).await);
    let stored = s.list_results(T, &run.id, Page::default()).await.unwrap();
    let indexes: Vec<i64> = stored.items.iter().map(|r| r.item_index).collect();
    assert_eq!(indexes, [0, 4]);
    assert_eq!(s.get_run(T, &run.id).await.unwrap().succeeded_count, 2);

    // A finished run takes no write, even inside a chunk still held.
    assert_eq!(
        chunk(s.claim_chunk(&run.id, &helper, 3, LEASE).await.unwrap()),
        (3, 6)
    );
    s.finish_run(&run.id, &lead, RunStatus::Completed, None)
        .await
        .unwrap();
    assert_lease_lost(
        s.write_results(&run.id, &helper, vec![result_for(&added[5], 5, None)])
            .await,
    );
}

async fn lapsed_and_released_chunks_are_claimed_again_first(s: Fixture) {
    let (run, _, lead, helper) = lead_and_helper(&s, 8).await;
    let short = Duration::from_millis(50);
    assert_eq!(
        chunk(s.claim_chunk(&run.id, &helper, 2, short).await.unwrap()),
        (0, 2)
    );
    assert_eq!(
        chunk(s.claim_chunk(&run.id, &helper, 2, LEASE).await.unwrap()),
        (2, 4)
    );
    // Held under a live lease: the next claim gets new positions.
    tokio::time::sleep(Duration::from_millis(120)).await;
    s.renew_chunks(&run.id, &helper, LEASE).await.unwrap();
    assert_eq!(
        chunk(s.claim_chunk(&run.id, &lead, 2, LEASE).await.unwrap()),
        (4, 6)
    );
    // (The renewal renewed both of the helper's chunks: nothing lapsed.)
    // Released chunks go back at once, lowest first.
    s.release_chunks(&run.id, &helper).await.unwrap();
    assert_eq!(
        chunk(s.claim_chunk(&run.id, &lead, 2, LEASE).await.unwrap()),
        (0, 2)
    );
    assert_eq!(
        chunk(s.claim_chunk(&run.id, &lead, 2, LEASE).await.unwrap()),
        (2, 4)
    );
    // A lapsed chunk comes before positions not handed out yet.
    let other = s.join_run(T, &run.id, "other").await.unwrap();
    assert_eq!(
        chunk(s.claim_chunk(&run.id, &other, 2, short).await.unwrap()),
        (6, 8)
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        chunk(s.claim_chunk(&run.id, &helper, 2, LEASE).await.unwrap()),
        (6, 8)
    );
    // Done chunks never come back.
    for first in [0, 2, 4] {
        assert_eq!(
            s.finish_chunk(&run.id, &lead, first).await.unwrap(),
            ChunkDone::RunOpen,
            "the helper's chunk is not done"
        );
    }
    s.release_chunks(&run.id, &lead).await.unwrap();
    assert_eq!(
        s.claim_chunk(&run.id, &lead, 2, LEASE).await.unwrap(),
        ChunkGrant::Busy
    );
}

async fn run_to_help_finds_held_runs_with_work_nobody_holds(s: Fixture) {
    let (ds, _) = dataset_with(&s, "helpable", 4).await;
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    // Pending: a lead must take it first.
    assert!(s.run_to_help("helper", &[]).await.unwrap().is_none());
    let run = s.claim_run(T, &run.id, "lead", LEASE).await.unwrap();
    let lead = Claim::of("lead", &run);
    // Not before its lead claimed a first chunk (it is loading plugins).
    assert!(s.run_to_help("helper", &[]).await.unwrap().is_none());
    let short = Duration::from_millis(50);
    chunk(s.claim_chunk(&run.id, &lead, 2, short).await.unwrap());
    let (tenant, found) = s.run_to_help("helper", &[]).await.unwrap().unwrap();
    assert_eq!((tenant.as_str(), found.id.as_str()), (T, run.id.as_str()));
    // Never the caller's own run, nor one it executes already.
    assert!(s.run_to_help("lead", &[]).await.unwrap().is_none());
    assert!(
        s.run_to_help("helper", std::slice::from_ref(&run.id))
            .await
            .unwrap()
            .is_none()
    );
    // Every position handed out and held: nothing to help with.
    chunk(s.claim_chunk(&run.id, &lead, 4, short).await.unwrap());
    assert!(s.run_to_help("helper", &[]).await.unwrap().is_none());
    // The chunks' lease lapses: work again, but not for the claim that
    // held them (it may still be executing them).
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(s.run_to_help("helper", &[]).await.unwrap().is_some());
    assert_eq!(
        s.claim_chunk(&run.id, &lead, 4, LEASE).await.unwrap(),
        ChunkGrant::Busy
    );
    // An exclusive run is executed by its lease holder alone.
    s.set_run_exclusive(&run.id, &lead, true).await.unwrap();
    assert!(s.run_to_help("helper", &[]).await.unwrap().is_none());
    let helper = s.join_run(T, &run.id, "helper").await.unwrap();
    assert_eq!(
        s.claim_chunk(&run.id, &helper, 4, LEASE).await.unwrap(),
        ChunkGrant::Busy
    );
    assert_lease_lost(s.set_run_exclusive(&run.id, &helper, false).await);
    s.set_run_exclusive(&run.id, &lead, false).await.unwrap();
    assert!(s.run_to_help("helper", &[]).await.unwrap().is_some());
    // A run asked to cancel is not helped.
    s.request_cancel(T, &run.id).await.unwrap();
    assert!(s.run_to_help("helper", &[]).await.unwrap().is_none());
}

/// A running run of `tenant` over `n` items of a dataset of its own, whose
/// lead `lead` holds its first chunk (two positions, a long lease): a run
/// [`RunStore::run_to_help`] offers to others.
async fn helpable_run(s: &Fixture, tenant: &str, lead: &str, n: usize) -> (Run, Claim) {
    let ds = s.create_dataset(tenant, new_dataset(lead)).await.unwrap();
    s.add_items(tenant, &ds.id, items(0..n)).await.unwrap();
    let ds = s.get_dataset(tenant, &ds.id).await.unwrap();
    let run = s.create_run(tenant, new_run(&ds)).await.unwrap();
    let run = s.claim_run(tenant, &run.id, lead, LEASE).await.unwrap();
    let claim = Claim::of(lead, &run);
    assert_eq!(
        chunk(s.claim_chunk(&run.id, &claim, 2, LEASE).await.unwrap()),
        (0, 2)
    );
    (run, claim)
}

/// Which run `run_to_help` offers a process executing nothing yet, as
/// `(tenant, run id)`.
async fn offered_to_help(s: &Fixture) -> (String, String) {
    let (tenant, run) = s.run_to_help("helper", &[]).await.unwrap().unwrap();
    (tenant, run.id)
}

/// `(tenant, run id)` of `run`.
fn of(tenant: &str, run: &Run) -> (String, String) {
    (tenant.to_string(), run.id.clone())
}

async fn run_to_help_prefers_the_tenant_holding_the_fewest_live_chunks(s: Fixture) {
    for tenant in ["tenant-a", "tenant-b"] {
        s.create_tenant(tenant, &TenantLimits::default())
            .await
            .unwrap();
    }
    // Both of A's runs are older than B's. Its first is helped already:
    // two helpers hold a chunk of it each, besides its lead.
    let (a1, _) = helpable_run(&s, "tenant-a", "lead-a1", 16).await;
    let helper_a = s.join_run("tenant-a", &a1.id, "helper-a").await.unwrap();
    chunk(s.claim_chunk(&a1.id, &helper_a, 2, LEASE).await.unwrap());
    let leaving_a = s.join_run("tenant-a", &a1.id, "leaving-a").await.unwrap();
    chunk(s.claim_chunk(&a1.id, &leaving_a, 2, LEASE).await.unwrap());
    let (a2, _) = helpable_run(&s, "tenant-a", "lead-a2", 16).await;
    let (b, _) = helpable_run(&s, "tenant-b", "lead-b", 16).await;
    // A holds four live chunks, B one: B's run, the newest, and although
    // A's second run holds no more than B's (chunks count per tenant).
    assert_eq!(offered_to_help(&s).await, of("tenant-b", &b));

    // B catches up (four chunks each): the oldest run again.
    let helper_b = s.join_run("tenant-b", &b.id, "helper-b").await.unwrap();
    let mut held_b = Vec::new();
    for _ in 0..3 {
        held_b.push(chunk(s.claim_chunk(&b.id, &helper_b, 2, LEASE).await.unwrap()).0);
    }
    assert_eq!(offered_to_help(&s).await, of("tenant-a", &a1));
    // A done chunk holds nothing any more: B 3, A 4.
    s.finish_chunk(&b.id, &helper_b, held_b[0]).await.unwrap();
    assert_eq!(offered_to_help(&s).await, of("tenant-b", &b));
    // Nor does a chunk whose lease ended: A 3, B 3, the oldest run.
    s.release_chunks(&a1.id, &leaving_a).await.unwrap();
    assert_eq!(offered_to_help(&s).await, of("tenant-a", &a1));
    // The runs the caller executes already are passed over first,
    // whichever tenant holds fewer: with A's, B's run.
    let executing = [a1.id.clone(), a2.id.clone()];
    let (tenant, run) = s.run_to_help("helper", &executing).await.unwrap().unwrap();
    assert_eq!((tenant, run.id), of("tenant-b", &b));
}

async fn run_to_help_follows_tenant_weights(s: Fixture) {
    for (tenant, weight) in [("light", 1), ("heavy", 3)] {
        let limits = TenantLimits {
            weight,
            ..TenantLimits::default()
        };
        s.create_tenant(tenant, &limits).await.unwrap();
    }
    // Light's run is the older; each lead holds one chunk.
    let (light, light_lead) = helpable_run(&s, "light", "lead-light", 16).await;
    let (heavy, _) = helpable_run(&s, "heavy", "lead-heavy", 16).await;
    let helper = s
        .join_run("heavy", &heavy.id, "helper-heavy")
        .await
        .unwrap();
    // Weight 3 against 1: heavy's run is offered while heavy holds fewer
    // than three chunks per chunk light holds, though it is the newer run.
    for _ in 0..2 {
        assert_eq!(offered_to_help(&s).await, of("heavy", &heavy));
        chunk(s.claim_chunk(&heavy.id, &helper, 2, LEASE).await.unwrap());
    }
    // Three to one: even, the older run.
    assert_eq!(offered_to_help(&s).await, of("light", &light));
    chunk(s.claim_chunk(&heavy.id, &helper, 2, LEASE).await.unwrap());
    assert_eq!(offered_to_help(&s).await, of("light", &light));
    // Light holds two: heavy, with four, is below six.
    chunk(
        s.claim_chunk(&light.id, &light_lead, 2, LEASE)
            .await
            .unwrap(),
    );
    assert_eq!(offered_to_help(&s).await, of("heavy", &heavy));
}

async fn a_run_without_items_is_done_at_once_and_never_offered(s: Fixture) {
    let ds = s.create_dataset(T, new_dataset("empty")).await.unwrap();
    let run = s.create_run(T, new_run(&ds)).await.unwrap();
    let run = s.claim_run(T, &run.id, "lead", LEASE).await.unwrap();
    let lead = Claim::of("lead", &run);
    assert_eq!(
        s.claim_chunk(&run.id, &lead, 4, LEASE).await.unwrap(),
        ChunkGrant::Done
    );
    assert!(s.run_to_help("helper", &[]).await.unwrap().is_none());
}

async fn chunk_renewals_report_cancel_and_the_end_of_the_run(s: Fixture) {
    let (run, _, lead, helper) = lead_and_helper(&s, 4).await;
    chunk(s.claim_chunk(&run.id, &helper, 4, LEASE).await.unwrap());
    let control = s.renew_chunks(&run.id, &helper, LEASE).await.unwrap();
    assert!(!control.cancel_requested);
    s.request_cancel(T, &run.id).await.unwrap();
    assert!(
        s.renew_chunks(&run.id, &helper, LEASE)
            .await
            .unwrap()
            .cancel_requested
    );
    s.finish_run(&run.id, &lead, RunStatus::Cancelled, None)
        .await
        .unwrap();
    assert_lease_lost(s.renew_chunks(&run.id, &helper, LEASE).await);
}
