//! The `assay` binary: parse, set up logging, run, map the outcome to an
//! exit code (see `assay --help`).

use std::io::Write;
use std::process::ExitCode;

use assay::cli::{self, Cli};
use assay::exit::{Exit, code_for_error};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry =
        assay::logging::init(cli.global.log_format, cli.global.otlp_endpoint.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Error.into();
        }
    };
    let outcome = runtime.block_on(cli::run(cli));
    let exit = match outcome {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("error: {}", assay::term::safe(&format_error(&e)));
            code_for_error(&e)
        }
    };
    let _ = std::io::stdout().flush();
    // Do not wait for stray blocking tasks (a plugin compile, a signal
    // listener) once the command is done.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    telemetry.shutdown();
    exit.into()
}

/// The error and its causes, one per line, without repeating a cause that
/// the message already contains.
fn format_error(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str("\n  caused by: ");
            text.push_str(&c);
        }
    }
    text
}
