//! Backoff between retries of a transient failure.

use std::time::Duration;

use rand::Rng;

use crate::config::MAX_BACKOFF;

/// The wait before retry `attempt` (0-based): `base * 2^attempt` plus a
/// random extra between 0 and `base / 2`, capped at [`MAX_BACKOFF`].
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX));
    let jitter_ms = (base.as_millis() / 2) as u64;
    let jitter = if jitter_ms == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    };
    exp.saturating_add(jitter).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_with_bounded_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 0..4 {
            let floor = base * 2u32.pow(attempt);
            for _ in 0..50 {
                let d = backoff(base, attempt);
                assert!(d >= floor && d <= floor + base / 2, "{attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn is_capped() {
        assert_eq!(backoff(Duration::from_secs(10), 30), MAX_BACKOFF);
        assert_eq!(backoff(Duration::ZERO, 3), Duration::ZERO);
    }
}
