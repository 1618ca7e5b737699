//! Run progress on stderr: a live bar on a terminal, a plain line every few
//! seconds otherwise (logs, CI), or nothing. Stdout is never touched, so
//! `--json` output stays clean.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::table;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A redrawn bar (stderr is a terminal).
    Bar,
    /// One line per interval.
    Lines(Duration),
    /// Nothing.
    Off,
}

/// Interval of the plain progress lines.
pub const LINE_INTERVAL: Duration = Duration::from_secs(2);

impl ProgressMode {
    /// A bar on a terminal, lines otherwise, nothing when `quiet`.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            ProgressMode::Off
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines(LINE_INTERVAL)
        }
    }
}

struct Counters {
    total: u64,
    done: AtomicU64,
    failed: AtomicU64,
    done_at_start: u64,
    started: Instant,
}

impl Counters {
    fn line(&self) -> String {
        let done = self.done.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            (done - self.done_at_start) as f64 / elapsed
        } else {
            0.0
        };
        let pct = if self.total > 0 {
            done as f64 / self.total as f64
        } else {
            1.0
        };
        let eta = if rate > 0.0 {
            table::seconds(self.total.saturating_sub(done) as f64 / rate)
        } else {
            "-".into()
        };
        format!(
            "progress: {done}/{} items ({}) · {failed} failed · {rate:.1} items/s · ETA {eta}",
            self.total,
            table::percent(pct)
        )
    }
}

/// The progress display of one run. Shared by reference (or in an `Arc`);
/// counting is lock-free.
pub struct Progress {
    counters: Arc<Counters>,
    bar: Option<ProgressBar>,
    ticker: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Prints lines on stderr above the progress bar (cloneable, for tasks that
/// outlive a borrow of [`Progress`]).
#[derive(Clone)]
pub struct Printer {
    bar: Option<ProgressBar>,
}

impl Printer {
    /// Prints `text` on stderr without garbling the bar.
    pub fn println(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }
}

impl Progress {
    /// Starts showing progress of `total` items, `done` (of which `failed`)
    /// already finished (a resumed run). Must be called inside a tokio
    /// runtime for [`ProgressMode::Lines`].
    pub fn start(total: u64, done: u64, failed: u64, mode: ProgressMode) -> Self {
        let counters = Arc::new(Counters {
            total,
            done: AtomicU64::new(done),
            failed: AtomicU64::new(failed),
            done_at_start: done,
            started: Instant::now(),
        });
        let (bar, ticker) = match mode {
            ProgressMode::Off => (None, None),
            ProgressMode::Bar => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} items · {msg} · {rate} · ETA {eta}",
                )
                .expect("valid template")
                .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1} items/s", s.per_sec());
                });
                bar.set_message(format!("{failed} failed"));
                bar.set_style(style);
                bar.set_position(done);
                bar.enable_steady_tick(Duration::from_millis(120));
                (Some(bar), None)
            }
            ProgressMode::Lines(every) => {
                let c = counters.clone();
                let ticker = tokio::spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    tick.tick().await;
                    loop {
                        tick.tick().await;
                        eprintln!("{}", c.line());
                    }
                });
                (None, Some(ticker))
            }
        };
        Self {
            counters,
            bar,
            ticker: Mutex::new(ticker),
        }
    }

    /// Sets the counts (when following a run executed elsewhere).
    pub fn set_counts(&self, done: u64, failed: u64) {
        self.counters.done.store(done, Ordering::Relaxed);
        self.counters.failed.store(failed, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(format!("{failed} failed"));
        }
    }

    /// A handle that prints above the bar.
    pub fn printer(&self) -> Printer {
        Printer {
            bar: self.bar.clone(),
        }
    }

    /// Counts one finished item.
    pub fn item_done(&self, failed: bool) {
        self.counters.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            let n = self.counters.failed.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(bar) = &self.bar {
                bar.set_message(format!("{n} failed"));
            }
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Prints a line on stderr without garbling the bar.
    pub fn println(&self, text: &str) {
        self.printer().println(text);
    }

    /// Stops the display (the bar is cleared; the summary follows).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(t) = self.ticker.lock().expect("progress lock").take() {
            t.abort();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_plain_line_counts_items_failures_and_rate() {
        let p = Progress::start(10, 2, 1, ProgressMode::Off);
        p.item_done(false);
        p.item_done(true);
        let line = p.counters.line();
        assert!(
            line.starts_with("progress: 4/10 items (40.0%) · 2 failed"),
            "{line}"
        );
        assert!(line.contains("items/s"), "{line}");
        p.finish();
    }
}
