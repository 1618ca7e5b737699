//! `assay dataset import` streams files: memory does not grow with the
//! file, and a file that is bad anywhere imports nothing.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::Env;
use serde_json::Value;

/// Writes a JSONL file of `n` items (about 120 bytes each), with line
/// `bad_line` (1-based) broken when given.
fn write_jsonl(path: &Path, n: usize, bad_line: Option<usize>) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 1..=n {
        if Some(i) == bad_line {
            writeln!(out, "{{\"input\": \"question {i}\", oops}}").unwrap();
        } else {
            writeln!(
                out,
                "{{\"input\": {{\"question\": \"What is item number {i} of this file?\"}}, \"expected\": \"answer {i}\", \"topic\": \"t{}\"}}",
                i % 7
            )
            .unwrap();
        }
    }
}

/// Runs `assay dataset import FILE --json` and returns its JSON output and
/// its peak resident memory in KiB (VmHWM, read until the process exits).
#[cfg(target_os = "linux")]
fn import_with_peak_rss(env: &Env, file: &Path) -> (Value, u64) {
    let mut child = env
        .std_cmd()
        .args(["dataset", "import", file.to_str().unwrap(), "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    // Drain stdout on a thread so a full pipe cannot stall the child.
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    while child.try_wait().unwrap().is_none() {
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(kib) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = reader.join().unwrap();
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_str(&stdout).unwrap(), peak)
}

#[cfg(target_os = "linux")]
#[test]
fn importing_three_times_the_lines_does_not_take_three_times_the_memory() {
    let env = Env::new();
    let small = env.path("small.jsonl");
    let large = env.path("large.jsonl");
    write_jsonl(&small, 100_000, None);
    write_jsonl(&large, 300_000, None);
    let (small_out, small_peak) = import_with_peak_rss(&env, &small);
    let (large_out, large_peak) = import_with_peak_rss(&env, &large);
    assert_eq!(small_out["itemCount"], 100_000);
    assert_eq!(large_out["itemCount"], 300_000);
    assert_eq!(large_out["dataset"]["itemCount"], 300_000);
    eprintln!("peak RSS: 100k lines {small_peak} KiB, 300k lines {large_peak} KiB");
    assert!(small_peak > 0 && large_peak > 0);
    assert!(
        (large_peak as f64) < 1.3 * small_peak as f64,
        "peak RSS: 100k lines {small_peak} KiB, 300k lines {large_peak} KiB"
    );
}

#[test]
fn a_bad_line_near_the_end_of_a_large_file_imports_nothing() {
    let env = Env::new();
    let file = env.path("late.jsonl");
    // Past several store batches: the batches read before the bad line
    // must not stay behind.
    write_jsonl(&file, 5_000, Some(4_990));
    let out = env
        .cmd()
        .args(["dataset", "import", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 4990"), "{stderr}");
    assert!(stderr.contains("Nothing was imported"), "{stderr}");
    let list = env
        .cmd()
        .args(["dataset", "list", "--json"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .or_else(|| list["datasets"].as_array())
        .expect("a list of datasets")
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"late"), "{names:?}");
}

#[test]
fn appending_a_file_adds_one_version_holding_every_line() {
    let env = Env::new();
    let first = env.path("base.jsonl");
    write_jsonl(&first, 10, None);
    let more = env.path("more.jsonl");
    write_jsonl(&more, 2_500, None);
    let created = env
        .cmd()
        .args(["dataset", "import", first.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(created.status.success());
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let id = created["dataset"]["id"].as_str().unwrap();
    let appended = env
        .cmd()
        .args([
            "dataset",
            "import",
            more.to_str().unwrap(),
            "--into",
            id,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        appended.status.success(),
        "{}",
        String::from_utf8_lossy(&appended.stderr)
    );
    let appended: Value = serde_json::from_slice(&appended.stdout).unwrap();
    assert_eq!(appended["added"], 2_500);
    assert_eq!(
        appended["version"],
        created["version"].as_i64().unwrap() + 1
    );
    assert_eq!(appended["dataset"]["itemCount"], 2_510);
}
