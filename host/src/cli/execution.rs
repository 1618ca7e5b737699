//! The flags of a process that executes runs in the background: `assay
//! serve` and `assay worker` both flatten [`ExecutionArgs`], so the two
//! accept the same flags with the same defaults, and build their assembly
//! and scheduler settings the same way.

use std::time::Duration;

use anyhow::Result;
use assay_runner::{AssemblySettings, Ceilings, SchedulerConfig, SecretKey};
use clap::Args;

use crate::app::{AppConfig, normalize_database_url};
use crate::cli::args::parse_duration;

/// How many runs and items a process executes, what no run may exceed, and
/// how plugins are compiled and cached.
#[derive(Debug, Clone, Args)]
pub struct ExecutionArgs {
    /// Runs executed at once (more wait as pending)
    #[arg(long, default_value_t = assay_api::config::DEFAULT_MAX_ACTIVE_RUNS, value_name = "N")]
    pub max_active_runs: usize,
    /// Times a run may be taken over after the process running it stopped
    /// without finishing it (crash, kill) before it is failed instead of
    /// resumed again
    #[arg(long, default_value_t = assay_runner::DEFAULT_MAX_TAKEOVERS, value_name = "N")]
    pub max_takeovers: i64,
    /// Items in flight at once across all runs
    #[arg(long, default_value_t = assay_runner::assembly::DEFAULT_PROCESS_ITEM_SLOTS, value_name = "N")]
    pub item_slots: usize,
    /// At shutdown, how long in-flight items may take to finish
    #[arg(long, value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub grace: Duration,
    /// Ceiling: linear memory of one plugin call, in MiB
    #[arg(long, default_value_t = Ceilings::default().max_memory_bytes >> 20, value_name = "MIB")]
    pub max_memory_mib: usize,
    /// Ceiling: deadline of one target call
    #[arg(long, value_parser = parse_duration, default_value = "5m", value_name = "DURATION")]
    pub max_target_timeout: Duration,
    /// Ceiling: deadline of one scorer call
    #[arg(long, value_parser = parse_duration, default_value = "1m", value_name = "DURATION")]
    pub max_scorer_timeout: Duration,
    /// Ceiling: deadline of one item, all attempts (also for runs that set none)
    #[arg(long, value_parser = parse_duration, default_value = "15m", value_name = "DURATION")]
    pub max_item_timeout: Duration,
    /// Ceiling: JSON one plugin call may return, in KiB
    #[arg(long, default_value_t = Ceilings::default().max_output_bytes >> 10, value_name = "KIB")]
    pub max_output_kib: usize,
    /// Largest plugin component accepted (upload or --plugins-dir), in MiB
    #[arg(long, default_value_t = AssemblySettings::default().max_component_bytes >> 20, value_name = "MIB")]
    pub max_plugin_mib: usize,
    /// Plugin compilations at once, process-wide (further uploads wait)
    #[arg(long, default_value_t = AssemblySettings::default().max_concurrent_compiles, value_name = "N")]
    pub compile_concurrency: usize,
    /// Longest one plugin load may take, waiting for a compile slot included
    #[arg(long, value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub compile_timeout: Duration,
    /// Size budget of the compiled-plugin disk cache, in MiB (least recently used trimmed)
    #[arg(long, default_value_t = AssemblySettings::default().cache_max_bytes >> 20, value_name = "MIB")]
    pub plugin_cache_mib: u64,
    /// Written memory a freed plugin-instance slot keeps and resets in
    /// place instead of returning it to the kernel, in MiB (0: off). About
    /// twice the items per second for small plugins; honoured only on Linux
    /// 6.7+ with swap off, and even then a page the kernel migrates at the
    /// moment of the reset can escape it, so a later call (of any tenant)
    /// could read it: see docs/plugin-contract.md before turning it on
    #[arg(long, default_value_t = 0, value_name = "MIB")]
    pub keep_resident_mib: usize,
    /// Compiled plugin code kept in memory, in MiB (least recently used dropped; reloaded on use)
    #[arg(long, default_value_t = AssemblySettings::default().loaded_plugin_bytes >> 20, value_name = "MIB")]
    pub plugin_memory_mib: u64,
}

impl ExecutionArgs {
    /// The assembly these flags ask for, on top of the global settings
    /// (database, cache directory, lease): unlike the command line's own
    /// runs, runs executed in the background are held to the ceilings.
    pub fn assembly(
        &self,
        app: &AppConfig,
        secret_key: Option<SecretKey>,
    ) -> Result<AssemblySettings> {
        Ok(AssemblySettings {
            database_url: normalize_database_url(&app.assembly.database_url)?,
            process_item_slots: self.item_slots.max(1),
            max_component_bytes: self.max_plugin_mib.max(1) << 20,
            max_concurrent_compiles: self.compile_concurrency.max(1),
            compile_timeout: self.compile_timeout,
            cache_max_bytes: self.plugin_cache_mib.max(1) << 20,
            loaded_plugin_bytes: self.plugin_memory_mib.max(1) << 20,
            keep_resident_bytes: self.keep_resident_mib << 20,
            ceilings: Ceilings {
                max_memory_bytes: self.max_memory_mib.max(1) << 20,
                max_target_timeout: self.max_target_timeout,
                max_scorer_timeout: self.max_scorer_timeout,
                max_item_timeout: self.max_item_timeout,
                max_output_bytes: self.max_output_kib.max(1) << 10,
            },
            secret_key,
            ..app.assembly.clone()
        })
    }

    /// The scheduler settings these flags ask for.
    pub fn scheduler(&self) -> SchedulerConfig {
        SchedulerConfig {
            max_active_runs: self.max_active_runs.max(1),
            max_takeovers: self.max_takeovers.max(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn execution_of(args: &[&str]) -> (super::ExecutionArgs, crate::app::AppConfig) {
        let cli = Cli::try_parse_from(args).unwrap();
        let app = cli.global.app_config();
        match cli.command {
            Command::Serve(a) => (a.execution, app),
            Command::Worker(a) => (a.execution, app),
            _ => unreachable!(),
        }
    }

    /// `assay serve` and `assay worker` read the same flags into the same
    /// settings.
    #[test]
    fn serve_and_worker_take_the_same_execution_flags() {
        let flags = [
            "--max-active-runs",
            "3",
            "--max-takeovers",
            "1",
            "--item-slots",
            "9",
            "--grace",
            "4s",
            "--max-item-timeout",
            "2m",
            "--compile-concurrency",
            "1",
            "--plugin-memory-mib",
            "64",
            "--keep-resident-mib",
            "8",
        ];
        let mut serve = vec!["assay", "serve"];
        serve.extend(flags);
        let mut worker = vec!["assay", "worker"];
        worker.extend(flags);
        let (s, s_app) = execution_of(&serve);
        let (w, w_app) = execution_of(&worker);
        let s_assembly = s.assembly(&s_app, None).unwrap();
        assert_eq!(s_assembly, w.assembly(&w_app, None).unwrap());
        assert_eq!(s.scheduler(), w.scheduler());
        assert_eq!(s.grace, w.grace);
        assert_eq!(s.scheduler().max_active_runs, 3);
        assert_eq!(s.scheduler().max_takeovers, 1);
        assert_eq!(s_assembly.process_item_slots, 9);
        assert_eq!(s_assembly.ceilings.max_item_timeout.as_secs(), 120);
        assert_eq!(s_assembly.loaded_plugin_bytes, 64 << 20);
        assert_eq!(s_assembly.keep_resident_bytes, 8 << 20);
        assert_eq!(s.grace.as_secs(), 4);
    }

    /// A process serving several tenants keeps no written pages unless the
    /// operator asks (a page the kernel swaps or migrates at the reset
    /// could reach another tenant's call), while the command line's own
    /// runs do.
    #[test]
    fn only_the_operator_turns_kept_pages_on_for_serve_and_worker() {
        for command in ["serve", "worker"] {
            let (e, app) = execution_of(&["assay", command]);
            assert_eq!(
                e.assembly(&app, None).unwrap().keep_resident_bytes,
                0,
                "{command}"
            );
            assert!(
                app.assembly.keep_resident_bytes > 0,
                "the command line's own runs"
            );
        }
    }

    /// Flags that only a process executing runs uses are refused next to
    /// `--no-execute` rather than ignored.
    #[test]
    fn serve_no_execute_refuses_the_flags_it_would_ignore() {
        for flag in [
            "--max-active-runs",
            "--max-takeovers",
            "--item-slots",
            "--keep-resident-mib",
        ] {
            let e = Cli::try_parse_from(["assay", "serve", "--no-execute", flag, "2"])
                .err()
                .unwrap_or_else(|| panic!("{flag} was accepted with --no-execute"));
            assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict, "{e}");
        }
        // The ceilings and plugin limits still bound triggers and uploads.
        Cli::try_parse_from(["assay", "serve", "--no-execute", "--max-item-timeout", "1m"])
            .unwrap();
    }
}
