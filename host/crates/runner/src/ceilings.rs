//! Operator ceilings: what no run of this process may exceed, whatever its
//! options ask (per-call memory, target and scorer deadlines, item
//! deadline, output size). `assay serve` sets them with flags; a trigger
//! asking for more is refused, a stored run is clamped when it is planned.

use std::time::Duration;

use assay_plugin_host::Limits;

use crate::config::RunOptions;
use crate::error::RunError;

const MIB: usize = 1 << 20;

/// The ceilings of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ceilings {
    /// Linear memory of one plugin instance.
    pub max_memory_bytes: usize,
    /// Deadline of one target call.
    pub max_target_timeout: Duration,
    /// Deadline of one scorer call.
    pub max_scorer_timeout: Duration,
    /// Deadline of one item, all attempts included (also the deadline of
    /// items whose run sets none).
    pub max_item_timeout: Duration,
    /// JSON a plugin call may return.
    pub max_output_bytes: usize,
}

impl Default for Ceilings {
    /// 256 MiB per call, targets 5 min, scorers 1 min, items 15 min, 1 MiB
    /// of output: room for slow network-bound targets, not for one tenant
    /// holding the machine.
    fn default() -> Self {
        Self {
            max_memory_bytes: 256 * MIB,
            max_target_timeout: Duration::from_secs(300),
            max_scorer_timeout: Duration::from_secs(60),
            max_item_timeout: Duration::from_secs(900),
            max_output_bytes: MIB,
        }
    }
}

/// A ceiling a run option crossed.
struct Crossing {
    field: &'static str,
    limit: &'static str,
    asked: u64,
    value: u64,
}

impl Crossing {
    fn error(&self) -> RunError {
        RunError::OverLimit {
            field: self.field.to_string(),
            asked: self.asked,
            scope: "operator ceiling",
            limit: self.limit,
            value: self.value,
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Ceilings {
    /// No ceiling beyond what [`RunOptions::validate`] already allows (the
    /// CLI, running the operator's own runs).
    pub fn none() -> Self {
        Self {
            max_memory_bytes: 4 << 30,
            max_target_timeout: Duration::from_secs(24 * 3600),
            max_scorer_timeout: Duration::from_secs(24 * 3600),
            max_item_timeout: Duration::from_secs(24 * 3600),
            max_output_bytes: Limits::default().max_output_bytes,
        }
    }

    fn crossings(&self, o: &RunOptions) -> Vec<Crossing> {
        let mut out = Vec::new();
        let mut time = |field, limit, asked: Option<Duration>, max: Duration| {
            if let Some(a) = asked
                && a > max
            {
                out.push(Crossing {
                    field,
                    limit,
                    asked: ms(a),
                    value: ms(max),
                });
            }
        };
        time(
            "itemTimeout",
            "max-item-timeout",
            o.item_timeout,
            self.max_item_timeout,
        );
        time(
            "targetTimeout",
            "max-target-timeout",
            o.target_timeout,
            self.max_target_timeout,
        );
        time(
            "scorerTimeout",
            "max-scorer-timeout",
            o.scorer_timeout,
            self.max_scorer_timeout,
        );
        if let Some(m) = o.max_memory_bytes
            && m > self.max_memory_bytes
        {
            out.push(Crossing {
                field: "maxMemoryBytes",
                limit: "max-memory",
                asked: m as u64,
                value: self.max_memory_bytes as u64,
            });
        }
        out
    }

    /// `OverLimit` for the first option above a ceiling (a trigger).
    pub fn check(&self, options: &RunOptions) -> Result<(), RunError> {
        match self.crossings(options).first() {
            Some(c) => Err(c.error()),
            None => Ok(()),
        }
    }

    /// Lowers every option above a ceiling to it and says what changed, one
    /// notice per option (the CLI prints them).
    pub fn clamp(&self, options: &mut RunOptions) -> Vec<String> {
        let crossings = self.crossings(options);
        for c in &crossings {
            match c.field {
                "itemTimeout" => options.item_timeout = Some(self.max_item_timeout),
                "targetTimeout" => options.target_timeout = Some(self.max_target_timeout),
                "scorerTimeout" => options.scorer_timeout = Some(self.max_scorer_timeout),
                _ => options.max_memory_bytes = Some(self.max_memory_bytes),
            }
        }
        crossings
            .iter()
            .map(|c| format!("{}; using {}", c.error(), c.value))
            .collect()
    }

    /// The sandbox limits of one call: `base` (the target or scorer
    /// defaults) with the run's deadline and memory, never above a ceiling.
    pub fn call_limits(
        &self,
        base: Limits,
        timeout: Option<Duration>,
        max_timeout: Duration,
        memory: Option<usize>,
    ) -> Limits {
        Limits {
            timeout: timeout.unwrap_or(base.timeout).min(max_timeout),
            max_memory_bytes: memory
                .unwrap_or(base.max_memory_bytes)
                .min(self.max_memory_bytes),
            max_output_bytes: base.max_output_bytes.min(self.max_output_bytes),
            ..base
        }
    }

    /// The deadline of one item: the run's, never above the ceiling.
    pub fn item_timeout(&self, asked: Option<Duration>) -> Duration {
        asked
            .unwrap_or(self.max_item_timeout)
            .min(self.max_item_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ceilings() -> Ceilings {
        Ceilings {
            max_memory_bytes: 64 * MIB,
            max_target_timeout: Duration::from_secs(10),
            max_scorer_timeout: Duration::from_secs(2),
            max_item_timeout: Duration::from_secs(30),
            max_output_bytes: 1000,
        }
    }

    #[test]
    fn an_option_above_a_ceiling_is_refused_naming_it() {
        let c = ceilings();
        let o = RunOptions {
            target_timeout: Some(Duration::from_secs(11)),
            ..RunOptions::default()
        };
        let e = c.check(&o).unwrap_err().to_string();
        assert!(
            e.contains("targetTimeout") && e.contains("max-target-timeout"),
            "{e}"
        );
        assert!(e.contains("10000"), "{e}");
        assert!(c.check(&RunOptions::default()).is_ok());
    }

    #[test]
    fn the_cli_clamps_with_a_notice_per_option() {
        let c = ceilings();
        let mut o = RunOptions {
            item_timeout: Some(Duration::from_secs(3600)),
            max_memory_bytes: Some(512 * MIB),
            ..RunOptions::default()
        };
        let notices = c.clamp(&mut o);
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert!(notices[0].contains("max-item-timeout"), "{notices:?}");
        assert_eq!(o.item_timeout, Some(Duration::from_secs(30)));
        assert_eq!(o.max_memory_bytes, Some(64 * MIB));
        assert!(c.check(&o).is_ok());
    }

    #[test]
    fn call_limits_never_exceed_the_ceilings() {
        let c = ceilings();
        let l = c.call_limits(Limits::default(), None, c.max_target_timeout, None);
        assert_eq!(l.timeout, Duration::from_secs(10));
        assert_eq!(l.max_output_bytes, 1000);
        assert_eq!(c.item_timeout(None), Duration::from_secs(30));
        assert_eq!(
            c.item_timeout(Some(Duration::from_secs(5))),
            Duration::from_secs(5)
        );
    }
}
