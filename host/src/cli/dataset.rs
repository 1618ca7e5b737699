//! `assay dataset create|import|export|list|show|items|delete`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use assay_store::{Dataset, DatasetItem, ItemQuery, NewDataset, Page};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::app::App;
use crate::cli::print_json;
use crate::dataset_file::{CsvColumns, CsvWriter, FileFormat, JsonlWriter};
use crate::exit::{Exit, UsageError};
use crate::import::{append_file, import_file, source_of};
use crate::table;

/// Items read per page when exporting.
const EXPORT_PAGE: i64 = 1000;

/// Dataset commands.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Create an empty dataset
    #[command(after_help = "\
Examples:
  assay dataset create --name capitals --description 'Capital cities'
  assay dataset create --name qa --input-schema schema.json")]
    Create(CreateArgs),
    /// Import a JSONL, CSV, TSV or JSON file (re-importing the same content is a no-op)
    #[command(after_help = "\
Examples:
  assay dataset import examples/capitals.jsonl
  assay dataset import examples/capitals.csv --name capitals-csv
  assay dataset import more.jsonl --into capitals     # append as a new version

JSONL lines (and JSON array elements) are objects with `input`, optionally
`expectedOutput` (or expected_output, expected, groundTruth) and `context` (or
metadata); other fields go into the context. CSV/TSV files need an `input`
column and may have an `expectedOutput` column; other columns go into the
context. Cells that look like JSON are parsed as JSON. A bad line stops the
import with an error naming it, and nothing is imported.

Importing a file into the dataset of the same name again: identical content
reuses the dataset; changed content updates it as a new version (items are
matched by input, so runs before and after stay comparable).")]
    Import(ImportArgs),
    /// Write a dataset's items as JSONL, CSV or TSV
    #[command(after_help = "\
Examples:
  assay dataset export capitals > capitals.jsonl
  assay dataset export capitals --format csv -o capitals.csv
  assay dataset export capitals --version 1 -o v1.jsonl")]
    Export(ExportArgs),
    /// List datasets
    #[command(after_help = "\
Examples:
  assay dataset list
  assay dataset list --json")]
    List(ListArgs),
    /// Show a dataset: fields, versions and recent runs
    #[command(after_help = "\
Examples:
  assay dataset show capitals
  assay dataset show 0193a1b2-... --json")]
    Show(ShowArgs),
    /// List a dataset's items
    #[command(after_help = "\
Examples:
  assay dataset items capitals
  assay dataset items capitals --search paris --limit 5
  assay dataset items capitals --version 1 --json")]
    Items(ItemsArgs),
    /// Delete a dataset with its items, history, runs and results
    #[command(after_help = "\
Examples:
  assay dataset delete capitals --yes")]
    Delete(DeleteArgs),
}

/// `dataset create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name (unique)
    #[arg(long)]
    pub name: String,
    /// Description
    #[arg(long)]
    pub description: Option<String>,
    /// Metadata: a JSON object
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    /// JSON Schema every item input must satisfy: a file or inline JSON
    #[arg(long, value_name = "FILE|JSON")]
    pub input_schema: Option<String>,
    /// JSON Schema every expected output must satisfy: a file or inline JSON
    #[arg(long, value_name = "FILE|JSON")]
    pub output_schema: Option<String>,
    /// Print the dataset as JSON
    #[arg(long)]
    pub json: bool,
}

/// `dataset import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file
    pub file: PathBuf,
    /// Dataset name [default: the file name without extension]
    #[arg(long, conflicts_with = "into")]
    pub name: Option<String>,
    /// Append the items to this existing dataset (id or name) instead
    #[arg(long, value_name = "DATASET")]
    pub into: Option<String>,
    /// File format [default: from the extension]
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// Print the outcome as JSON
    #[arg(long)]
    pub json: bool,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated, with a header.
    Csv,
    /// Tab-separated, with a header.
    Tsv,
}

/// `dataset export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Dataset id or name
    pub dataset: String,
    /// Version to export [default: the latest]
    #[arg(long, value_name = "N")]
    pub version: Option<i64>,
    /// Format [default: from the output file's extension, else jsonl]
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// Write to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `dataset list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Most datasets shown
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `dataset show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Dataset id or name
    pub dataset: String,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `dataset items`.
#[derive(Debug, Args)]
pub struct ItemsArgs {
    /// Dataset id or name
    pub dataset: String,
    /// Items as they were at this version [default: the latest]
    #[arg(long, value_name = "N")]
    pub version: Option<i64>,
    /// Only items whose input or expected output contains TEXT (case-insensitive)
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Most items shown
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Skip this many items
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
    /// Print one JSON object per line
    #[arg(long)]
    pub json: bool,
}

/// `dataset delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Dataset id or name
    pub dataset: String,
    /// Confirm the deletion
    #[arg(long)]
    pub yes: bool,
}

/// Runs a dataset command.
pub async fn run(app: &App, cmd: DatasetCommand) -> Result<Exit> {
    match cmd {
        DatasetCommand::Create(a) => create(app, a).await,
        DatasetCommand::Import(a) => import(app, a).await,
        DatasetCommand::Export(a) => export(app, a).await,
        DatasetCommand::List(a) => list(app, a).await,
        DatasetCommand::Show(a) => show(app, a).await,
        DatasetCommand::Items(a) => items(app, a).await,
        DatasetCommand::Delete(a) => delete(app, a).await,
    }?;
    Ok(Exit::Success)
}

fn json_arg(flag: &str, text: &str) -> Result<Value> {
    let path = Path::new(text);
    let source = if !text.trim_start().starts_with('{') && path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {text}"))?
    } else {
        text.to_string()
    };
    serde_json::from_str(&source).map_err(|e| {
        UsageError(format!(
            "{flag}: not valid JSON (or a readable JSON file): {e}"
        ))
        .into()
    })
}

async fn create(app: &App, a: CreateArgs) -> Result<()> {
    let new = NewDataset {
        name: a.name,
        description: a.description,
        metadata: a.metadata.map(|m| json_arg("--metadata", &m)).transpose()?,
        input_schema: a
            .input_schema
            .map(|s| json_arg("--input-schema", &s))
            .transpose()?,
        output_schema: a
            .output_schema
            .map(|s| json_arg("--output-schema", &s))
            .transpose()?,
    };
    let dataset = app.store.create_dataset(&app.tenant, new).await?;
    if a.json {
        print_json(&dataset)?;
    } else {
        println!("Created dataset {} ({})", dataset.name, dataset.id);
        println!(
            "Add items with `assay dataset import <file> --into {}`",
            dataset.name
        );
    }
    Ok(())
}

async fn import(app: &App, a: ImportArgs) -> Result<()> {
    let imported = match &a.into {
        Some(target) => {
            let dataset = app.dataset(target).await?;
            append_file(&app.store, &app.tenant, dataset, &a.file, a.format).await?
        }
        None => {
            import_file(
                &app.store,
                &app.tenant,
                &a.file,
                a.format,
                a.name.as_deref(),
            )
            .await?
        }
    };
    if a.json {
        print_json(&imported)?;
    } else {
        println!("{}", imported.describe(&a.file.display().to_string()));
    }
    Ok(())
}

async fn export(app: &App, a: ExportArgs) -> Result<()> {
    let dataset = app.dataset(&a.dataset).await?;
    let version = a.version.unwrap_or(dataset.version);
    if version < 0 || version > dataset.version {
        bail!(
            "dataset {} has versions 0 to {}",
            dataset.name,
            dataset.version
        );
    }
    let format =
        a.format.unwrap_or_else(
            || match a.output.as_deref().and_then(FileFormat::from_path) {
                Some(FileFormat::Csv) => ExportFormat::Csv,
                Some(FileFormat::Tsv) => ExportFormat::Tsv,
                _ => ExportFormat::Jsonl,
            },
        );
    let out: Box<dyn Write> = match &a.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let count = match format {
        ExportFormat::Jsonl => {
            let mut w = JsonlWriter::new(out);
            let n = for_each_item(app, &dataset, version, |item| {
                w.write(
                    &item.input,
                    item.expected_output.as_ref(),
                    item.context.as_ref(),
                )
                .context("cannot write the export")
            })
            .await?;
            w.finish()?;
            n
        }
        ExportFormat::Csv | ExportFormat::Tsv => {
            let delimiter = if format == ExportFormat::Csv {
                b','
            } else {
                b'\t'
            };
            // First pass: the context columns (and whether CSV can hold them).
            let mut columns = CsvColumns::default();
            let mut position = 0usize;
            for_each_item(app, &dataset, version, |item| {
                position += 1;
                columns.observe(position, item.context.as_ref())?;
                Ok(())
            })
            .await?;
            let mut w = CsvWriter::new(out, delimiter, columns.into_columns())?;
            let n = for_each_item(app, &dataset, version, |item| {
                w.write(
                    &item.input,
                    item.expected_output.as_ref(),
                    item.context.as_ref(),
                )
                .context("cannot write the export")
            })
            .await?;
            w.finish()?;
            n
        }
    };
    if let Some(path) = &a.output {
        eprintln!(
            "Exported {count} items of {} v{version} to {}",
            dataset.name,
            path.display()
        );
    }
    Ok(())
}

/// Calls `f` on every item of `version`, in dataset order, a page at a time.
async fn for_each_item(
    app: &App,
    dataset: &Dataset,
    version: i64,
    mut f: impl FnMut(&DatasetItem) -> Result<()>,
) -> Result<usize> {
    let mut after = None;
    let mut count = 0;
    loop {
        let page = app
            .store
            .items_at_version(&app.tenant, &dataset.id, version, after, EXPORT_PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.position);
        for item in &page {
            f(item)?;
            count += 1;
        }
    }
    Ok(count)
}

async fn list(app: &App, a: ListArgs) -> Result<()> {
    let mut datasets = Vec::new();
    let mut page = 0;
    while (datasets.len() as u32) < a.limit {
        let p = app
            .store
            .list_datasets(&app.tenant, Page::new(page, 100))
            .await?;
        datasets.extend(p.items);
        if !p.has_more {
            break;
        }
        page += 1;
    }
    datasets.truncate(a.limit as usize);
    if a.json {
        return print_json(&datasets);
    }
    if datasets.is_empty() {
        println!("No datasets yet. Import one with `assay dataset import <file.jsonl>`.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = datasets
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.name.clone(),
                d.version.to_string(),
                d.item_count.to_string(),
                d.updated_at.format("%Y-%m-%d %H:%M").to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(
            &["ID", "NAME", "VERSION", "ITEMS", "UPDATED"],
            &rows,
            &[2, 3]
        )
    );
    Ok(())
}

async fn show(app: &App, a: ShowArgs) -> Result<()> {
    let dataset = app.dataset(&a.dataset).await?;
    let versions = app
        .store
        .list_dataset_versions(&app.tenant, &dataset.id, Page::new(0, 10))
        .await?;
    let runs = app
        .store
        .list_runs(&app.tenant, Some(&dataset.id), Page::new(0, 5))
        .await?;
    if a.json {
        return print_json(&serde_json::json!({
            "dataset": dataset,
            "versions": versions.items,
            "recentRuns": runs.items,
        }));
    }
    println!("{} ({})", dataset.name, dataset.id);
    if let Some(d) = &dataset.description {
        println!("  description  {d}");
    }
    println!(
        "  version      {} · {} items",
        dataset.version, dataset.item_count
    );
    if let Some(source) = source_of(&dataset) {
        let file = dataset
            .metadata
            .as_ref()
            .and_then(|m| m.pointer("/source/file"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        println!(
            "  source       {file} (v{}, sha256 {})",
            source.version,
            &source.sha256[..12.min(source.sha256.len())]
        );
    }
    if dataset.input_schema.is_some() || dataset.output_schema.is_some() {
        println!(
            "  schemas      input {} · output {}",
            if dataset.input_schema.is_some() {
                "yes"
            } else {
                "no"
            },
            if dataset.output_schema.is_some() {
                "yes"
            } else {
                "no"
            }
        );
    }
    println!(
        "  created      {}",
        dataset.created_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    if !versions.items.is_empty() {
        println!("\n  Versions ({} in all):", versions.total);
        let rows: Vec<Vec<String>> = versions
            .items
            .iter()
            .map(|v| {
                vec![
                    v.version.to_string(),
                    v.change.clone(),
                    v.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                ]
            })
            .collect();
        for line in table::render(&["VERSION", "CHANGE", "AT"], &rows, &[0]).lines() {
            println!("  {line}");
        }
    }
    if !runs.items.is_empty() {
        println!("\n  Recent runs ({} in all):", runs.total);
        let rows: Vec<Vec<String>> = runs
            .items
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.status.to_string(),
                    format!("v{}", r.dataset_version),
                    r.target_id.clone(),
                    r.created_at.format("%Y-%m-%d %H:%M").to_string(),
                ]
            })
            .collect();
        for line in table::render(
            &["RUN", "STATUS", "VERSION", "TARGET", "CREATED"],
            &rows,
            &[],
        )
        .lines()
        {
            println!("  {line}");
        }
    }
    Ok(())
}

async fn items(app: &App, a: ItemsArgs) -> Result<()> {
    let dataset = app.dataset(&a.dataset).await?;
    // Walk pages of 100 from the offset until `limit` items are shown.
    let mut shown: Vec<DatasetItem> = Vec::new();
    let mut total = 0;
    let per_page = 100u32;
    let mut page = a.offset / per_page;
    let mut skip = (a.offset % per_page) as usize;
    while (shown.len() as u32) < a.limit {
        let p = app
            .store
            .list_items(
                &app.tenant,
                &dataset.id,
                ItemQuery {
                    version: a.version,
                    search: a.search.clone(),
                    page: Page::new(page, per_page),
                },
            )
            .await?;
        total = p.total;
        shown.extend(p.items.into_iter().skip(skip));
        skip = 0;
        if !p.has_more {
            break;
        }
        page += 1;
    }
    shown.truncate(a.limit as usize);
    if a.json {
        let mut out = std::io::stdout().lock();
        for item in &shown {
            serde_json::to_writer(&mut out, item)?;
            writeln!(out)?;
        }
        return Ok(());
    }
    if shown.is_empty() {
        println!("No items.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|i| {
            vec![
                i.position.to_string(),
                i.id.clone(),
                table::truncate(&compact(&i.input), 48),
                i.expected_output
                    .as_ref()
                    .map(|e| table::truncate(&compact(e), 32))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["#", "ID", "INPUT", "EXPECTED"], &rows, &[0])
    );
    let first = a.offset as usize + 1;
    println!(
        "Items {first}-{} of {total} (--offset / --limit for more, --json for everything)",
        first + shown.len() - 1
    );
    Ok(())
}

/// A JSON value on one line: strings without quotes.
pub(crate) fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn delete(app: &App, a: DeleteArgs) -> Result<()> {
    let dataset = app.dataset(&a.dataset).await?;
    if !a.yes {
        return Err(UsageError(format!(
            "deleting dataset {} removes its {} items, its history, runs and results; add --yes to confirm",
            dataset.name, dataset.item_count
        ))
        .into());
    }
    app.store.delete_dataset(&app.tenant, &dataset.id).await?;
    println!("Deleted dataset {} ({})", dataset.name, dataset.id);
    Ok(())
}
