//! Per-host rate limits of a grant, enforced across every call that shares
//! one [`RateLimiters`]. The runner takes them from one [`RateLimiterPool`]
//! per run, so the same limit (same host pattern, same rates) is one
//! limiter for all of the run's plugins: a target and an LLM judge on one
//! provider share its requests per second.
//!
//! * **Requests per second** pace requests: each takes the next free slot
//!   (`1/rate` after the previous one) and waits for it before it is sent.
//!   A request is never refused for going too fast, only delayed, and the
//!   wait does not count against the request's `timeoutMs` (the call's own
//!   deadline still bounds it).
//! * **Tokens per minute** are counted from what the host reports: the
//!   `usage` of its JSON answers (`total_tokens`, or `totalTokens`, or the
//!   sum of the prompt and completion counts), read by the host as the
//!   plugin reads the body (up to [`USAGE_SCAN_BYTES`]). A request waits
//!   while the tokens reported in the last 60 seconds reach the budget.
//!   A request's own tokens are known only once it is answered, so requests
//!   already in flight can take a minute past its budget; the next requests
//!   then wait until enough of that minute has passed.
//!
//! The plugin cannot lie its way past either: requests are counted by the
//! host, and tokens are read from the server's answer, not from the
//! plugin's metadata.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::grant::{HostPattern, RateLimit, Scheme};

/// The window of a tokens-per-minute budget.
const TOKEN_WINDOW: Duration = Duration::from_secs(60);

/// Bytes of a response body kept to find its `usage` (a chat completion is
/// far smaller; a larger body is not counted).
pub const USAGE_SCAN_BYTES: usize = 1 << 20;

/// The rate limiters of one grant, shared by the calls that use it.
#[derive(Debug, Default)]
pub struct RateLimiters {
    hosts: Vec<Arc<HostLimiter>>,
}

/// Limiters handed out by limit: asking twice for an equal [`RateLimit`]
/// gives the same limiter.
#[derive(Debug, Default)]
pub struct RateLimiterPool {
    limiters: Mutex<HashMap<RateLimit, Arc<HostLimiter>>>,
}

impl RateLimiterPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// The limiters of `limits`, shared with every earlier caller that
    /// asked for an equal limit.
    pub fn limiters_for(&self, limits: &[RateLimit]) -> RateLimiters {
        let mut pool = self.limiters.lock().expect("rate limiter pool lock");
        RateLimiters {
            hosts: limits
                .iter()
                .map(|l| {
                    pool.entry(l.clone())
                        .or_insert_with(|| Arc::new(HostLimiter::new(l)))
                        .clone()
                })
                .collect(),
        }
    }
}

#[derive(Debug)]
struct HostLimiter {
    pattern: HostPattern,
    pacer: Option<Pacer>,
    tokens: Option<TokenBudget>,
}

impl HostLimiter {
    fn new(l: &RateLimit) -> Self {
        HostLimiter {
            pattern: l.host.clone(),
            pacer: l.requests_per_second.map(|r| Pacer::new(r.interval())),
            tokens: l.tokens_per_minute.map(TokenBudget::new),
        }
    }
}

impl RateLimiters {
    /// Limiters of their own for `limits` (none: every request goes at
    /// once).
    pub fn new(limits: &[RateLimit]) -> Self {
        Self {
            hosts: limits
                .iter()
                .map(|l| Arc::new(HostLimiter::new(l)))
                .collect(),
        }
    }

    /// True when no limit is set.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Waits until a request to `host:port` may be sent under every limit
    /// that matches it. Returns whether its answer's tokens are to be
    /// counted (some matching limit has a token budget).
    pub(crate) async fn wait_turn(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        let matching: Vec<&Arc<HostLimiter>> = self
            .hosts
            .iter()
            .filter(|h| h.pattern.matches(host, port, scheme))
            .collect();
        // Token budgets first: a request slot is taken only when the
        // request can go.
        for h in &matching {
            if let Some(budget) = &h.tokens {
                budget.wait_under().await;
            }
        }
        for h in &matching {
            if let Some(pacer) = &h.pacer {
                pacer.wait_turn().await;
            }
        }
        matching.iter().any(|h| h.tokens.is_some())
    }

    /// Counts `tokens` a host reported against every budget matching it.
    pub(crate) fn record_tokens(&self, scheme: Scheme, host: &str, port: u16, tokens: u64) {
        for h in &self.hosts {
            if let Some(budget) = &h.tokens
                && h.pattern.matches(host, port, scheme)
            {
                budget.record(tokens);
            }
        }
    }
}

/// Spaces requests `interval` apart.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            next: Mutex::new(None),
        }
    }

    async fn wait_turn(&self) {
        let slot = {
            let mut next = self.next.lock().expect("pacer lock");
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Tokens reported in the last minute, against a budget.
#[derive(Debug)]
struct TokenBudget {
    per_minute: u64,
    /// [`TOKEN_WINDOW`], shorter in tests.
    window: Duration,
    spent: Mutex<Spent>,
}

#[derive(Debug, Default)]
struct Spent {
    entries: VecDeque<(Instant, u64)>,
    sum: u64,
}

impl Spent {
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some(&(at, tokens)) = self.entries.front() {
            if now.duration_since(at) < window {
                break;
            }
            self.entries.pop_front();
            self.sum -= tokens;
        }
    }
}

impl TokenBudget {
    fn new(per_minute: u64) -> Self {
        Self {
            per_minute,
            window: TOKEN_WINDOW,
            spent: Mutex::new(Spent::default()),
        }
    }

    /// Waits until the last minute's tokens are under the budget.
    async fn wait_under(&self) {
        loop {
            let until = {
                let mut spent = self.spent.lock().expect("token budget lock");
                let now = Instant::now();
                spent.expire(now, self.window);
                if spent.sum < self.per_minute {
                    return;
                }
                // Under budget again once enough of the oldest entries
                // leave the window: wait for the first, then look again.
                spent.entries.front().map(|&(at, _)| at + self.window)
            };
            match until {
                Some(at) => tokio::time::sleep_until(at).await,
                None => return,
            }
        }
    }

    fn record(&self, tokens: u64) {
        let mut spent = self.spent.lock().expect("token budget lock");
        spent.sum = spent.sum.saturating_add(tokens);
        spent.entries.push_back((Instant::now(), tokens));
    }
}

/// The tokens a JSON answer reports in `usage`, if any.
pub(crate) fn reported_tokens(body: &[u8]) -> Option<u64> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let usage = value.get("usage")?;
    let count = |keys: &[&str]| keys.iter().find_map(|k| usage.get(*k)?.as_u64());
    count(&["total_tokens", "totalTokens"]).or_else(|| {
        let prompt = count(&["prompt_tokens", "promptTokens", "input_tokens"]);
        let completion = count(&["completion_tokens", "completionTokens", "output_tokens"]);
        match (prompt, completion) {
            (None, None) => None,
            (p, c) => Some(p.unwrap_or(0).saturating_add(c.unwrap_or(0))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::RequestRate;

    fn limit(rps: Option<f64>, tpm: Option<u64>) -> RateLimit {
        RateLimit {
            host: "api.example.com".parse().unwrap(),
            requests_per_second: rps.map(|r| RequestRate::new(r).unwrap()),
            tokens_per_minute: tpm,
        }
    }

    #[tokio::test]
    async fn requests_are_spaced_by_the_rate_and_other_hosts_are_not() {
        let limiters = RateLimiters::new(&[limit(Some(20.0), None)]);
        let start = Instant::now();
        for _ in 0..5 {
            assert!(
                !limiters
                    .wait_turn(Scheme::Https, "api.example.com", 443)
                    .await
            );
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "4 gaps of 50 ms took {took:?}"
        );
        let other = Instant::now();
        for _ in 0..5 {
            limiters
                .wait_turn(Scheme::Https, "other.example", 443)
                .await;
        }
        assert!(other.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_pool_shares_equal_limits_and_keeps_others_apart() {
        let pool = RateLimiterPool::new();
        let target = pool.limiters_for(&[limit(Some(10.0), None)]);
        let judge = pool.limiters_for(&[limit(Some(10.0), None)]);
        let other = pool.limiters_for(&[limit(Some(10.5), None)]);
        let host = |l: &RateLimiters| Arc::as_ptr(&l.hosts[0]);
        assert_eq!(host(&target), host(&judge));
        assert_ne!(host(&target), host(&other));
        // Shared: two requests, one through each, are 100 ms apart.
        let start = Instant::now();
        target
            .wait_turn(Scheme::Https, "api.example.com", 443)
            .await;
        judge.wait_turn(Scheme::Https, "api.example.com", 443).await;
        assert!(start.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_spent_token_budget_waits_for_its_window_to_pass() {
        let mut budget = TokenBudget::new(100);
        budget.window = Duration::from_millis(300);
        let start = Instant::now();
        budget.wait_under().await;
        budget.record(60);
        budget.record(50);
        // 110 of 100 in the window: wait until those leave it.
        budget.wait_under().await;
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(300), "{took:?}");
        budget.record(99);
        let again = Instant::now();
        budget.wait_under().await;
        assert!(again.elapsed() < Duration::from_millis(100), "99 < 100");
    }

    #[test]
    fn usage_is_read_from_openai_shaped_answers() {
        let read = |v: Value| reported_tokens(v.to_string().as_bytes());
        assert_eq!(
            read(serde_json::json!({"usage": {"total_tokens": 42}})),
            Some(42)
        );
        assert_eq!(
            read(serde_json::json!({"usage": {"prompt_tokens": 40, "completion_tokens": 2}})),
            Some(42)
        );
        assert_eq!(
            read(serde_json::json!({"usage": {"total_tokens": -1}})),
            None
        );
        assert_eq!(read(serde_json::json!({"choices": []})), None);
        assert_eq!(reported_tokens(b"not json"), None);
    }
}
