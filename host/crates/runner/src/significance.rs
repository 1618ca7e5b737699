//! How sure a mean is, and whether two runs differ: the statistics of runs
//! with repeats (see `docs/runs.md`, "Repeats and significance").
//!
//! The unit is the item. A run with repeats executes each item several
//! times; its trials are not independent observations (they share the
//! item's difficulty), so a scorer's mean is the mean of per-item means and
//! its standard error is over items: `sd(item means) / sqrt(items)`. The
//! 95% interval uses Student's t distribution with `items - 1` degrees of
//! freedom for every `n` (it tends to the normal one as `n` grows, so no
//! switch is needed). Two runs are compared with a paired t-test over the
//! items both have a mean for: the differences of per-item means, tested
//! against zero, two-sided, significant when `p < 0.05`.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The level below which a difference is called significant.
pub const SIGNIFICANCE_LEVEL: f64 = 0.05;

/// Count, mean and sum of squared deviations of a stream of values
/// (Welford's update: one pass, constant memory, numerically stable).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    /// Adds one value.
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Values added.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean of the values (`None` when there is none).
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// Sample standard deviation (`n - 1` in the denominator; `None` below
    /// two values).
    pub fn sample_sd(&self) -> Option<f64> {
        (self.n > 1).then(|| (self.m2.max(0.0) / (self.n - 1) as f64).sqrt())
    }

    /// Standard error of the mean, `sd / sqrt(n)`.
    pub fn standard_error(&self) -> Option<f64> {
        self.sample_sd().map(|sd| sd / (self.n as f64).sqrt())
    }

    /// The mean with its standard error and 95% interval.
    pub fn estimate(&self) -> Option<MeanEstimate> {
        let mean = self.mean()?;
        let standard_error = self.standard_error();
        let ci95 = standard_error.map(|se| {
            let half = t_quantile_975(self.n - 1) * se;
            [mean - half, mean + half]
        });
        Some(MeanEstimate {
            n: self.n,
            mean,
            standard_deviation: self.sample_sd(),
            standard_error,
            ci95,
        })
    }
}

/// A mean over `n` units with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeanEstimate {
    /// Units the mean is over (items).
    pub n: u64,
    pub mean: f64,
    /// Sample standard deviation (`None` below two units).
    pub standard_deviation: Option<f64>,
    /// `standardDeviation / sqrt(n)`.
    pub standard_error: Option<f64>,
    /// 95% interval of the mean (Student's t, `n - 1` degrees of freedom).
    pub ci95: Option<[f64; 2]>,
}

/// A paired t-test of the differences `b - a` over items.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedTest {
    /// Items with a mean in both runs.
    pub pairs: u64,
    /// Mean of the per-item differences `b - a`.
    pub mean_difference: f64,
    /// Standard error of that mean.
    pub standard_error: f64,
    /// 95% interval of the mean difference.
    pub ci95: [f64; 2],
    /// `meanDifference / standardError` (infinite when every difference is
    /// the same non-zero value).
    pub t: f64,
    /// `pairs - 1`.
    pub degrees_of_freedom: u64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// `pValue < 0.05`.
    pub significant: bool,
}

impl PairedTest {
    /// The test of `differences` (one per item, `b - a`); `None` below two
    /// pairs (no variance to test against).
    pub fn of(differences: &Moments) -> Option<Self> {
        let se = differences.standard_error()?;
        let mean = differences.mean()?;
        let df = differences.count() - 1;
        let (t, p_value) = if se > 0.0 {
            let t = mean / se;
            (t, 2.0 * (1.0 - students_t(df).cdf(t.abs())))
        } else if mean == 0.0 {
            // Every pair is equal: no difference at all.
            (0.0, 1.0)
        } else {
            // Every pair differs by the same amount: no noise at all.
            (mean.signum() * f64::INFINITY, 0.0)
        };
        let half = t_quantile_975(df) * se;
        Some(Self {
            pairs: differences.count(),
            mean_difference: mean,
            standard_error: se,
            ci95: [mean - half, mean + half],
            t,
            degrees_of_freedom: df,
            p_value: p_value.clamp(0.0, 1.0),
            significant: p_value < SIGNIFICANCE_LEVEL,
        })
    }
}

fn students_t(df: u64) -> StudentsT {
    StudentsT::new(0.0, 1.0, df as f64).expect("a positive number of degrees of freedom")
}

/// The 97.5th percentile of Student's t with `df` degrees of freedom: the
/// half-width of a 95% interval in standard errors.
fn t_quantile_975(df: u64) -> f64 {
    students_t(df.max(1)).inverse_cdf(0.975)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(values: &[f64]) -> Moments {
        let mut m = Moments::default();
        values.iter().for_each(|&v| m.push(v));
        m
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// The CDF of Student's t with 3 degrees of freedom in closed form:
    /// F(t) = 1/2 + (x / (1 + t²/3) + atan x) / π with x = t / √3.
    fn t3_cdf(t: f64) -> f64 {
        let x = t / 3f64.sqrt();
        0.5 + (x / (1.0 + t * t / 3.0) + x.atan()) / std::f64::consts::PI
    }

    #[test]
    fn mean_sd_standard_error_and_interval_by_hand() {
        // Four item means 0.5, 0.7, 0.9, 0.3: mean 2.4 / 4 = 0.6; squared
        // deviations 0.01 + 0.01 + 0.09 + 0.09 = 0.2; variance 0.2 / 3;
        // sd = 0.258198889...; SE = sd / √4 = 0.129099444...; t(0.975, 3)
        // = 3.182446305...; interval 0.6 ± 0.410846...
        let e = moments(&[0.5, 0.7, 0.9, 0.3]).estimate().unwrap();
        assert_eq!(e.n, 4);
        assert!(close(e.mean, 0.6));
        let sd = (0.2f64 / 3.0).sqrt();
        assert!(close(e.standard_deviation.unwrap(), sd));
        assert!(close(e.standard_error.unwrap(), sd / 2.0));
        let half = 3.182_446_305_284_263 * sd / 2.0;
        let [lo, hi] = e.ci95.unwrap();
        assert!((lo - (0.6 - half)).abs() < 1e-6, "{lo}");
        assert!((hi - (0.6 + half)).abs() < 1e-6, "{hi}");
        assert!((half - 0.410_846).abs() < 1e-5, "{half}");
    }

    #[test]
    fn one_value_has_a_mean_but_no_spread() {
        let e = moments(&[0.25]).estimate().unwrap();
        assert_eq!((e.n, e.mean), (1, 0.25));
        assert_eq!(
            (e.standard_deviation, e.standard_error, e.ci95),
            (None, None, None)
        );
        assert_eq!(Moments::default().estimate(), None);
    }

    #[test]
    fn the_95_percent_quantile_is_the_t_tables() {
        // Printed t tables: 12.706 (1), 2.776 (4), 2.262 (9), 1.984 (100);
        // the normal 1.960 in the limit.
        for (df, q) in [(1, 12.706), (4, 2.776), (9, 2.262), (100, 1.984)] {
            assert!((t_quantile_975(df) - q).abs() < 1e-3, "{df}");
        }
        assert!((t_quantile_975(1_000_000) - 1.960).abs() < 1e-3);
    }

    #[test]
    fn a_paired_test_by_hand_is_significant() {
        // Differences 0.2, 0.1, 0.1, 0.3: mean 0.175; squared deviations
        // 0.000625 + 0.005625 + 0.005625 + 0.015625 = 0.0275; sd =
        // √(0.0275 / 3) = 0.095742710...; SE = 0.047871355...; t =
        // 3.655630775..., 3 degrees of freedom; p = 2 (1 - F₃(t)) = 0.03535.
        let test = PairedTest::of(&moments(&[0.2, 0.1, 0.1, 0.3])).unwrap();
        let se = (0.0275f64 / 3.0).sqrt() / 2.0;
        assert_eq!((test.pairs, test.degrees_of_freedom), (4, 3));
        assert!(close(test.mean_difference, 0.175));
        assert!(close(test.standard_error, se));
        assert!(close(test.t, 0.175 / se));
        assert!((test.t - 3.655_630_775).abs() < 1e-8);
        let p = 2.0 * (1.0 - t3_cdf(test.t));
        assert!((test.p_value - p).abs() < 1e-9, "{} vs {p}", test.p_value);
        assert!((test.p_value - 0.035_35).abs() < 1e-4);
        assert!(test.significant);
        assert!(
            test.ci95[0] > 0.0,
            "the interval excludes 0: {:?}",
            test.ci95
        );
    }

    #[test]
    fn a_paired_test_by_hand_is_not_significant() {
        // Differences 0.2, -0.1, 0.1, -0.1: mean 0.025; sd = 0.15; SE =
        // 0.075; t = 1/3; p = 2 (1 - F₃(1/3)) = 0.76082.
        let test = PairedTest::of(&moments(&[0.2, -0.1, 0.1, -0.1])).unwrap();
        assert!(close(test.t, 1.0 / 3.0));
        assert!((test.p_value - 2.0 * (1.0 - t3_cdf(1.0 / 3.0))).abs() < 1e-9);
        assert!((test.p_value - 0.760_82).abs() < 1e-4);
        assert!(!test.significant);
        assert!(test.ci95[0] < 0.0 && test.ci95[1] > 0.0);
    }

    #[test]
    fn degenerate_pairs() {
        assert_eq!(PairedTest::of(&moments(&[0.3])), None, "one pair");
        let same = PairedTest::of(&moments(&[0.0, 0.0, 0.0])).unwrap();
        assert_eq!((same.p_value, same.significant), (1.0, false));
        let shifted = PairedTest::of(&moments(&[0.1, 0.1, 0.1])).unwrap();
        assert_eq!((shifted.p_value, shifted.significant), (0.0, true));
        assert!(shifted.t.is_infinite() && shifted.t > 0.0);
    }
}
