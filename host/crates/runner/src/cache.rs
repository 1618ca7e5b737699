//! The output cache, as a run uses it: a run with `cache` on looks up each
//! page of items before starting them, starts the items found with their
//! stored output (like a re-scoring run, [`TargetSource::Recorded`]), and
//! calls the target for the others, storing each successful output.
//!
//! The key of an entry is a SHA-256 over what decides the target's output:
//! the target's content digest and kind, its config as stored with the run
//! (secrets appear there by name only, so a key never depends on a secret's
//! value), and the item as the target sees it: its input and metadata, and
//! for a scorer run as the target its ground truth too. JSON is hashed in a
//! canonical form (object keys sorted, no whitespace), so the same value
//! written differently gives the same key. See `docs/caching.md`.
//!
//! [`TargetSource::Recorded`]: crate::rescore::TargetSource::Recorded

use std::collections::HashMap;
use std::sync::Arc;

use assay_plugin_host::PluginItem;
use assay_store::{
    CachedOutput, DatasetItem, NewCachedOutput, Store, StoreError, TargetRecord, TargetType,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::executor::{STORAGE_RETRIES, STORAGE_RETRY_DELAY};
use crate::plugins::Target;
use crate::retry::backoff;

/// Outputs written to the store in one transaction, at most.
const MAX_BATCH: usize = 64;
/// Names the key's layout; a change of layout changes it, so entries of an
/// older layout are never mistaken for current ones.
const KEY_VERSION: &str = "assay-output-cache/1";

/// The output cache of one run: its target, the part of the key its items
/// share, and the task that writes new outputs.
pub struct OutputCache {
    target: Arc<dyn Target>,
    store: Arc<dyn Store>,
    tenant: String,
    run_id: String,
    /// SHA-256 state over the key's run-wide part.
    prefix: Sha256,
    /// Whether the item's ground truth is part of the key (a scorer run as
    /// the target grades it; a target plugin is not meant to read it).
    keys_ground_truth: bool,
    writer: mpsc::Sender<Job>,
}

type Job = (NewCachedOutput, oneshot::Sender<()>);

impl OutputCache {
    /// The cache of run `run_id`: `target` is called on a miss; the key
    /// covers `target_type`, `target_digest` (the run's pinned digest) and
    /// `target_config` (as stored with the run). Starts the writer task,
    /// which ends when the cache is dropped.
    pub fn new(
        store: Arc<dyn Store>,
        tenant: &str,
        run_id: &str,
        target: Arc<dyn Target>,
        target_type: TargetType,
        target_digest: &str,
        target_config: Option<&Value>,
    ) -> Self {
        let mut prefix = Sha256::new();
        for part in [
            KEY_VERSION,
            target_type.as_str(),
            target_digest,
            &canonical_json(target_config.unwrap_or(&Value::Null)),
        ] {
            prefix.update(part.as_bytes());
            // A newline cannot occur inside any part (canonical JSON
            // escapes it), so the parts cannot run into each other.
            prefix.update(b"\n");
        }
        let (tx, rx) = mpsc::channel(MAX_BATCH * 2);
        tokio::spawn(tracing::Instrument::in_current_span(write_loop(
            store.clone(),
            tenant.to_string(),
            rx,
        )));
        Self {
            target,
            store,
            tenant: tenant.to_string(),
            run_id: run_id.to_string(),
            prefix,
            keys_ground_truth: target_type == TargetType::Scorer,
            writer: tx,
        }
    }

    /// The target called on a miss.
    pub fn target(&self) -> &Arc<dyn Target> {
        &self.target
    }

    /// The key of `item` (hex SHA-256).
    pub fn key(&self, item: &PluginItem) -> String {
        self.key_of(
            &item.input,
            item.metadata.as_ref(),
            item.ground_truth.as_ref(),
        )
    }

    fn key_of(
        &self,
        input: &Value,
        metadata: Option<&Value>,
        ground_truth: Option<&Value>,
    ) -> String {
        let mut view = serde_json::Map::new();
        view.insert("input".into(), input.clone());
        view.insert("metadata".into(), metadata.cloned().unwrap_or(Value::Null));
        if self.keys_ground_truth {
            view.insert(
                "groundTruth".into(),
                ground_truth.cloned().unwrap_or(Value::Null),
            );
        }
        let mut hash = self.prefix.clone();
        hash.update(canonical_json(&Value::Object(view)).as_bytes());
        hex::encode(hash.finalize())
    }

    /// The stored outputs of `page`'s items, by item id, as the target phase
    /// of their results (see [`cached_record`]). A failed lookup is logged
    /// and answered with no hit: the items are then called, as without the
    /// cache.
    pub async fn lookup(&self, page: &[DatasetItem]) -> HashMap<String, TargetRecord> {
        let keyed: Vec<(String, &DatasetItem)> = page
            .iter()
            .map(|item| {
                let key = self.key_of(
                    &item.input,
                    item.context.as_ref(),
                    item.expected_output.as_ref(),
                );
                (key, item)
            })
            .collect();
        let keys: Vec<String> = keyed.iter().map(|(k, _)| k.clone()).collect();
        let found = match self.store.cached_outputs(&self.tenant, &keys).await {
            Ok(found) => found,
            Err(e) => {
                warn!(error = %e, "reading the output cache failed; calling the target instead");
                return HashMap::new();
            }
        };
        let by_key: HashMap<&str, &CachedOutput> =
            found.iter().map(|c| (c.key.as_str(), c)).collect();
        let hits: HashMap<String, TargetRecord> = keyed
            .iter()
            .filter_map(|(key, item)| {
                let entry = by_key.get(key.as_str())?;
                Some((item.id.clone(), cached_record(item, entry)))
            })
            .collect();
        debug!(
            items = page.len(),
            hits = hits.len(),
            "output cache looked up"
        );
        crate::metrics::output_cache_looked_up(&self.tenant, hits.len(), page.len() - hits.len());
        hits
    }

    /// Stores the output of a successful call of the target on `item`, and
    /// waits until it is written (so that a run that ended has stored every
    /// output it produced). A failed write is logged: the next run calls
    /// the target again for that item.
    pub async fn store(
        &self,
        item: &PluginItem,
        output: &Value,
        target_metadata: Option<&Value>,
        trace_id: Option<&str>,
        latency: f64,
    ) {
        let entry = NewCachedOutput {
            key: self.key(item),
            target_id: self.target.id().to_string(),
            output: output.clone(),
            target_metadata: target_metadata.cloned(),
            trace_id: trace_id.map(str::to_string),
            latency,
            run_id: self.run_id.clone(),
        };
        let (ack, written) = oneshot::channel();
        if self.writer.send((entry, ack)).await.is_ok() {
            let _ = written.await;
        }
    }
}

/// The target phase of `item`'s result from a cached output: the output,
/// trace id and latency of the call that produced it, no retries and no
/// logs, and its metadata with a `cached` object added (`fromRun`: the run
/// whose call produced it; `storedAt`; `key`). Metadata that is not an
/// object is kept under `value`.
pub fn cached_record(item: &DatasetItem, entry: &CachedOutput) -> TargetRecord {
    let cached = json!({
        "fromRun": entry.run_id,
        "storedAt": entry.created_at,
        "key": entry.key,
    });
    let target_metadata = match entry.target_metadata.clone() {
        None => json!({ "cached": cached }),
        Some(Value::Object(mut fields)) => {
            fields.insert("cached".into(), cached);
            Value::Object(fields)
        }
        Some(other) => json!({ "cached": cached, "value": other }),
    };
    TargetRecord {
        item_id: item.id.clone(),
        item_index: item.position,
        // Runs with repeats never use the cache (`RunOptions::validate`).
        trial: 0,
        output: Some(entry.output.clone()),
        latency: entry.latency,
        error: None,
        error_kind: None,
        retry_count: 0,
        trace_id: entry.trace_id.clone(),
        target_metadata: Some(target_metadata),
        logs: None,
    }
}

/// Whether a result's target metadata says its output came from the cache.
pub fn is_cached(target_metadata: Option<&Value>) -> bool {
    target_metadata.is_some_and(|m| m.pointer("/cached/fromRun").is_some())
}

/// `value` as canonical JSON: object keys sorted by their UTF-8 bytes, no
/// whitespace, strings and numbers as `serde_json` writes them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(fields) => {
            let mut entries: Vec<(&String, &Value)> = fields.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(values) => {
            out.push('[');
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Writes queued outputs in batches: everything queued when the writer
/// gets to it, up to [`MAX_BATCH`], in one transaction. A batch that fails
/// (after retries of database errors) is written one output at a time, so
/// that one output the database refuses does not lose the others.
async fn write_loop(store: Arc<dyn Store>, tenant: String, mut rx: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (entries, acks): (Vec<_>, Vec<_>) = std::mem::take(&mut jobs).into_iter().unzip();
        if let Err(e) = put_with_retries(&store, &tenant, entries.clone()).await {
            if entries.len() > 1 {
                warn!(error = %e, size = entries.len(), "writing cached outputs failed; writing them one by one");
                for entry in entries {
                    if let Err(e) = put_with_retries(&store, &tenant, vec![entry]).await {
                        warn!(error = %e, "writing a cached output failed");
                    }
                }
            } else {
                warn!(error = %e, "writing a cached output failed");
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

async fn put_with_retries(
    store: &Arc<dyn Store>,
    tenant: &str,
    entries: Vec<NewCachedOutput>,
) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        match store.put_cached_outputs(tenant, entries.clone()).await {
            Ok(put) => {
                debug!(
                    stored = put.stored,
                    evicted = put.evicted,
                    too_large = put.too_large,
                    "cached outputs written"
                );
                return Ok(());
            }
            Err(StoreError::Database(e)) if attempt < STORAGE_RETRIES => {
                warn!(error = %e, attempt, "writing cached outputs failed; retrying");
                tokio::time::sleep(backoff(STORAGE_RETRY_DELAY, attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_drops_whitespace() {
        let a: Value =
            serde_json::from_str(r#"{"b": [1, {"y": 2, "x": "\n"}], "a": null}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":null,"b":[1,{"x":"\n","y":2}]}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":null,"b":[1,{"x":"\n","y":2}]}"#);
        assert_eq!(canonical_json(&a), canonical_json(&b));
        // Arrays keep their order; numbers keep their written form.
        assert_ne!(
            canonical_json(&json!([1, 2])),
            canonical_json(&json!([2, 1]))
        );
        assert_ne!(canonical_json(&json!(1)), canonical_json(&json!(1.0)));
    }

    #[test]
    fn cached_metadata_keeps_the_targets_fields_and_says_where_it_came_from() {
        let now = chrono::Utc::now();
        let item: DatasetItem = serde_json::from_value(json!({
            "id": "i1", "datasetId": "d", "version": 1, "position": 7,
            "input": "q", "createdAt": now, "updatedAt": now,
        }))
        .unwrap();
        let entry = |metadata: Option<Value>| CachedOutput {
            key: "k".into(),
            target_id: "t".into(),
            output: json!("a"),
            target_metadata: metadata,
            trace_id: Some("tr".into()),
            latency: 51.5,
            run_id: "r0".into(),
            size_bytes: 10,
            hits: 1,
            created_at: now,
            last_used_at: now,
        };
        let r = cached_record(&item, &entry(Some(json!({"usage": {"totalTokens": 9}}))));
        assert_eq!(r.output, Some(json!("a")));
        assert_eq!((r.item_index, r.latency, r.retry_count), (7, 51.5, 0));
        let m = r.target_metadata.unwrap();
        assert_eq!(m["usage"]["totalTokens"], 9);
        assert_eq!(m["cached"]["fromRun"], "r0");
        assert!(is_cached(Some(&m)));

        let m = cached_record(&item, &entry(None)).target_metadata.unwrap();
        assert!(is_cached(Some(&m)));
        let m = cached_record(&item, &entry(Some(json!("text"))))
            .target_metadata
            .unwrap();
        assert_eq!(m["value"], "text");
        assert!(is_cached(Some(&m)));
        assert!(!is_cached(Some(&json!({"cached": true}))));
        assert!(!is_cached(None));
    }
}
