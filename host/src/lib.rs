//! assay: run evaluation datasets through sandboxed WebAssembly plugins.
//!
//! This crate is the `assay` command line. The work is done by the shared
//! library crates (`assay-store`, `assay-runner`, `assay-plugin-host`,
//! `assay-api`), so a run started here is the same thing, in the same
//! database, as a run started through `assay serve`.
//!
//! * [`cli`]: argument definitions and one module per command group;
//! * [`dataset_file`]: JSONL / CSV / JSON dataset files in and out;
//! * [`import`]: file datasets into the store, matched by content;
//! * [`progress`]: the progress bar or lines on stderr;
//! * [`report`]: run summaries as tables or JSON;
//! * [`exit`]: the exit codes.

pub mod app;
pub mod cli;
pub mod dataset_file;
pub mod exit;
pub mod import;
pub mod logging;
pub mod progress;
pub mod report;
pub mod table;
pub mod term;
