//! Importing dataset files into the store, so runs over a file are stored
//! and comparable.
//!
//! A file is imported into the dataset named after it (or `--dataset-name`)
//! and the dataset's metadata remembers the file: `{"source": {"file",
//! "format", "sha256", "version"}}` where `sha256` hashes the normalized
//! items ([`crate::dataset_file::content_hash`]) and `version` is the dataset
//! version holding exactly those items.
//!
//! * Same content again (under any file name): the dataset is reused at the
//!   recorded version, so two runs of an unchanged file are comparable
//!   item by item.
//! * Changed content under the same name: the dataset is brought in line
//!   with the file as a new version. Items are matched by `input`: an item
//!   whose input is unchanged keeps its id (its expected output or context
//!   is updated), new inputs are added, vanished ones deleted. Runs before
//!   and after the edit stay comparable on the items they share.
//! * A same-named dataset that was not imported from a file is never
//!   touched: the import fails and says how to pick another name.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use assay_store::{
    Dataset, DatasetItem, DatasetPatch, ItemFeed, ItemPatch, NewDataset, NewItem, Page, Store,
    StoreError, StreamedItems,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::dataset_file::{
    DatasetFile, FileFormat, FileSummary, canonical_json, read_file, scan_file, stream_file,
};

/// Datasets scanned when looking for a content match by hash.
const MAX_SCANNED_DATASETS: u32 = 5_000;
/// Items per batch handed to the store while a file streams in.
const IMPORT_BATCH: usize = 1_000;
/// Batches read ahead of the store.
const BATCHES_AHEAD: usize = 2;

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum ImportAction {
    /// A new dataset was created.
    Created,
    /// An earlier import of the same content was reused.
    Reused,
    /// The dataset was updated to the file's content (a new version).
    Updated {
        /// Items added.
        added: usize,
        /// Items whose expected output or context changed.
        changed: usize,
        /// Items deleted.
        removed: usize,
    },
    /// Items were appended to an existing dataset (`--into`).
    Appended {
        /// Items added.
        added: usize,
    },
}

/// The outcome of an import.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Imported {
    /// The dataset as it is now.
    pub dataset: Dataset,
    /// The version holding the file's items (pin runs to it).
    pub version: i64,
    /// Items in the file.
    pub item_count: usize,
    /// What happened.
    #[serde(flatten)]
    pub action: ImportAction,
}

impl Imported {
    /// One line for people.
    pub fn describe(&self, file: &str) -> String {
        let d = &self.dataset;
        match &self.action {
            ImportAction::Created => format!(
                "Imported {} items from {file} as dataset {} ({}) v{}",
                self.item_count, d.name, d.id, self.version
            ),
            ImportAction::Reused => format!(
                "Using dataset {} ({}) v{}: same content as {file}",
                d.name, d.id, self.version
            ),
            ImportAction::Updated {
                added,
                changed,
                removed,
            } => format!(
                "Updated dataset {} ({}) to v{} from {file}: {added} added, {changed} changed, {removed} removed",
                d.name, d.id, self.version
            ),
            ImportAction::Appended { added } => format!(
                "Appended {added} items from {file} to dataset {} ({}), now v{}",
                d.name, d.id, self.version
            ),
        }
    }
}

/// The dataset name a file gets by default: its name without extension.
pub fn default_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "dataset".to_string())
}

/// Imports `path` (see the module docs for how existing datasets are
/// matched). Nothing is written when the file has an invalid line.
pub async fn import_file(
    store: &Arc<dyn Store>,
    tenant: &str,
    path: &Path,
    format: Option<FileFormat>,
    name: Option<&str>,
) -> Result<Imported> {
    let file = scan(path, format).await?;
    import_scanned(store, tenant, file, name).await
}

/// Reads a file through once off the async threads (see [`scan_file`]).
pub async fn scan(path: &Path, format: Option<FileFormat>) -> Result<FileSummary> {
    let path = path.to_path_buf();
    Ok(
        tokio::task::spawn_blocking(move || scan_file(&path, format))
            .await
            .context("reading the dataset file")??,
    )
}

/// [`import_file`] for a file already checked with [`scan`]. The file is
/// read again as it is stored, so memory stays flat whatever its size.
pub async fn import_scanned(
    store: &Arc<dyn Store>,
    tenant: &str,
    file: FileSummary,
    name: Option<&str>,
) -> Result<Imported> {
    let path = file.path.clone();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name
        .map(str::to_string)
        .unwrap_or_else(|| default_name(&path));

    if let Some(existing) = store.find_dataset_by_name(tenant, &name).await? {
        let Some(source) = source_of(&existing) else {
            bail!(
                "a dataset named `{name}` already exists and was not imported from a file, so assay will not change it\n  hint: pass --dataset-name <other name> to import {file_name} under another name, or run the existing dataset with --dataset {}",
                existing.id
            );
        };
        if source.sha256 == file.sha256 && source.version <= existing.version {
            return Ok(Imported {
                version: source.version,
                item_count: file.count,
                dataset: existing,
                action: ImportAction::Reused,
            });
        }
        return sync(store, tenant, existing, &file, &file_name).await;
    }

    if name_is_default(&path, &name)
        && let Some((dataset, version)) = find_by_hash(store, tenant, &file.sha256).await?
    {
        return Ok(Imported {
            dataset,
            version,
            item_count: file.count,
            action: ImportAction::Reused,
        });
    }

    create(store, tenant, &name, &file, &file_name).await
}

fn name_is_default(path: &Path, name: &str) -> bool {
    default_name(path) == name
}

/// Appends the items of `path` to an existing dataset (one new version).
pub async fn append_file(
    store: &Arc<dyn Store>,
    tenant: &str,
    dataset: Dataset,
    path: &Path,
    format: Option<FileFormat>,
) -> Result<Imported> {
    let file = scan(path, format).await?;
    let added = stream_into(store, tenant, &dataset.id, &file).await?;
    let dataset = store.get_dataset(tenant, &dataset.id).await?;
    Ok(Imported {
        version: added.version,
        item_count: file.count,
        dataset,
        action: ImportAction::Appended {
            added: added.added as usize,
        },
    })
}

/// Streams the items of `file` into a dataset: one transaction and one new
/// version, a bounded number of items in memory. The file is read again,
/// so it must still hash as it did when it was scanned: a file changed in
/// between is refused and nothing is added.
async fn stream_into(
    store: &Arc<dyn Store>,
    tenant: &str,
    dataset_id: &str,
    file: &FileSummary,
) -> Result<StreamedItems> {
    let (feed, batches) = tokio::sync::mpsc::channel(BATCHES_AHEAD);
    let (path, format, expected) = (file.path.clone(), file.format, file.sha256.clone());
    let reader = tokio::task::spawn_blocking(move || -> Result<()> {
        let read = stream_file(&path, Some(format), IMPORT_BATCH, &mut |batch| {
            feed.blocking_send(ItemFeed::Batch(batch)).is_ok()
        })?;
        if read.sha256 != expected {
            bail!(
                "{} changed while it was being imported; nothing was imported, try again",
                path.display()
            );
        }
        // The store may have stopped listening (its own error is returned).
        let _ = feed.blocking_send(ItemFeed::Done);
        Ok(())
    });
    let (stored, read) = tokio::join!(
        store.add_items_streamed(tenant, dataset_id, batches),
        reader
    );
    // A reading error explains why the store rolled back: it comes first.
    read.map_err(|e| anyhow!("reading the dataset file failed: {e}"))??;
    Ok(stored?)
}

async fn create(
    store: &Arc<dyn Store>,
    tenant: &str,
    name: &str,
    file: &FileSummary,
    file_name: &str,
) -> Result<Imported> {
    let dataset = store
        .create_dataset(
            tenant,
            NewDataset {
                name: name.to_string(),
                description: Some(format!("Imported from {file_name}")),
                metadata: Some(json!({})),
                input_schema: None,
                output_schema: None,
            },
        )
        .await?;
    if let Err(e) = stream_into(store, tenant, &dataset.id, file).await {
        // All or nothing: leave no empty dataset behind.
        let _ = store.delete_dataset(tenant, &dataset.id).await;
        return Err(e);
    }
    let dataset = record_source(store, tenant, &dataset.id, file, file_name).await?;
    Ok(Imported {
        version: dataset.version,
        item_count: file.count,
        dataset,
        action: ImportAction::Created,
    })
}

/// Brings `dataset` in line with `file`, matching items by input. Unlike a
/// first import this holds the file's items and the dataset's in memory
/// (the diff needs both).
async fn sync(
    store: &Arc<dyn Store>,
    tenant: &str,
    dataset: Dataset,
    summary: &FileSummary,
    file_name: &str,
) -> Result<Imported> {
    let file = read_whole(summary).await?;
    let mut by_input: HashMap<String, VecDeque<DatasetItem>> = HashMap::new();
    let mut after = None;
    loop {
        let page = store
            .items_at_version(tenant, &dataset.id, dataset.version, after, 1000)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.position);
        for item in page {
            by_input
                .entry(key(&item.input))
                .or_default()
                .push_back(item);
        }
    }
    let mut to_add: Vec<NewItem> = Vec::new();
    let mut changed = 0;
    for new in &file.items {
        let matched = by_input
            .get_mut(&key(&new.input))
            .and_then(VecDeque::pop_front);
        match matched {
            None => to_add.push(new.clone()),
            Some(old) => {
                if old.expected_output != new.expected_output || old.context != new.context {
                    store
                        .update_item(
                            tenant,
                            &dataset.id,
                            &old.id,
                            ItemPatch {
                                input: None,
                                expected_output: Some(new.expected_output.clone()),
                                context: Some(new.context.clone()),
                            },
                        )
                        .await?;
                    changed += 1;
                }
            }
        }
    }
    let stale: Vec<String> = by_input
        .into_values()
        .flatten()
        .map(|item| item.id)
        .collect();
    let added = to_add.len();
    if !to_add.is_empty() {
        add_in_batches(store, tenant, &dataset.id, to_add).await?;
    }
    if !stale.is_empty() {
        store.delete_items(tenant, &dataset.id, &stale).await?;
    }
    let dataset = record_source(store, tenant, &dataset.id, summary, file_name).await?;
    Ok(Imported {
        version: dataset.version,
        item_count: file.items.len(),
        dataset,
        action: ImportAction::Updated {
            added,
            changed,
            removed: stale.len(),
        },
    })
}

/// Reads a scanned file whole, checking it is still what was scanned.
/// Adds `items` as one change (one version, all or nothing) a batch at a
/// time: a single add call takes at most `MAX_ITEMS_PER_REQUEST` items.
async fn add_in_batches(
    store: &Arc<dyn Store>,
    tenant: &str,
    dataset_id: &str,
    items: Vec<NewItem>,
) -> Result<()> {
    let (feed, batches) = tokio::sync::mpsc::channel(BATCHES_AHEAD);
    let send = async move {
        let mut items = items.into_iter();
        loop {
            let batch: Vec<NewItem> = items.by_ref().take(IMPORT_BATCH).collect();
            if batch.is_empty() {
                let _ = feed.send(ItemFeed::Done).await;
                return;
            }
            // The store stopped listening: its own error is returned.
            if feed.send(ItemFeed::Batch(batch)).await.is_err() {
                return;
            }
        }
    };
    let (stored, ()) = tokio::join!(store.add_items_streamed(tenant, dataset_id, batches), send);
    stored?;
    Ok(())
}

async fn read_whole(summary: &FileSummary) -> Result<DatasetFile> {
    let (path, format) = (summary.path.clone(), summary.format);
    let file = tokio::task::spawn_blocking(move || read_file(&path, Some(format)))
        .await
        .context("reading the dataset file")??;
    if file.sha256 != summary.sha256 {
        bail!(
            "{} changed while it was being imported; nothing was imported, try again",
            summary.path.display()
        );
    }
    Ok(file)
}

fn key(input: &Value) -> String {
    let mut out = String::new();
    canonical_json(input, &mut out);
    out
}

/// Writes the `source` metadata for the dataset's current version, keeping
/// any other metadata keys.
async fn record_source(
    store: &Arc<dyn Store>,
    tenant: &str,
    dataset_id: &str,
    file: &FileSummary,
    file_name: &str,
) -> Result<Dataset> {
    let current = store.get_dataset(tenant, dataset_id).await?;
    let mut metadata = match current.metadata.clone() {
        Some(Value::Object(m)) => m,
        _ => Default::default(),
    };
    metadata.insert(
        "source".into(),
        json!({
            "file": file_name,
            "format": format!("{:?}", file.format).to_lowercase(),
            "sha256": file.sha256,
            "version": current.version,
        }),
    );
    let patch = DatasetPatch {
        metadata: Some(Some(Value::Object(metadata))),
        ..Default::default()
    };
    Ok(store.update_dataset(tenant, dataset_id, patch).await?)
}

/// The file a dataset was imported from, as recorded in its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Hex SHA-256 of the normalized items.
    pub sha256: String,
    /// The dataset version holding them.
    pub version: i64,
}

/// Reads `metadata.source`, if the dataset was imported from a file.
pub fn source_of(dataset: &Dataset) -> Option<Source> {
    let source = dataset.metadata.as_ref()?.get("source")?;
    Some(Source {
        sha256: source.get("sha256")?.as_str()?.to_string(),
        version: source.get("version")?.as_i64()?,
    })
}

async fn find_by_hash(
    store: &Arc<dyn Store>,
    tenant: &str,
    sha256: &str,
) -> Result<Option<(Dataset, i64)>, StoreError> {
    let per_page = 100;
    for page in 0..MAX_SCANNED_DATASETS / per_page {
        let datasets = store
            .list_datasets(tenant, Page::new(page, per_page))
            .await?;
        for d in datasets.items {
            if let Some(source) = source_of(&d)
                && source.sha256 == sha256
                && source.version <= d.version
            {
                let version = source.version;
                return Ok(Some((d, version)));
            }
        }
        if !datasets.has_more {
            break;
        }
    }
    Ok(None)
}
