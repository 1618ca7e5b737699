//! Loaded plugins kept in memory by digest, within a byte budget.
//!
//! Compiling a component takes tens to hundreds of milliseconds, so a
//! process keeps what it loaded. Without a bound, every plugin any tenant
//! ever uploaded would stay in memory for the life of the server; here the
//! least recently used ones are dropped once their compiled code adds up to
//! more than the budget, and a deleted plugin is dropped at once. A plugin
//! dropped here stays alive while a run still holds it (it is an `Arc`);
//! the next run that needs it loads it again (from the disk cache when
//! there is one).

use std::collections::HashMap;
use std::sync::Mutex;

/// A least-recently-used map whose entries weigh a number of bytes.
pub struct ByteLru<V> {
    budget: u64,
    state: Mutex<State<V>>,
}

struct State<V> {
    entries: HashMap<String, Entry<V>>,
    total: u64,
    /// Increases on every use: the entry with the smallest stamp is the
    /// least recently used.
    clock: u64,
}

struct Entry<V> {
    value: V,
    bytes: u64,
    last_used: u64,
}

impl<V: Clone> ByteLru<V> {
    /// An empty map holding at most `budget` bytes (but always the entry
    /// inserted last, however large).
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            state: Mutex::new(State {
                entries: HashMap::new(),
                total: 0,
                clock: 0,
            }),
        }
    }

    /// The value under `key`, marked as just used.
    pub fn get(&self, key: &str) -> Option<V> {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        let entry = state.entries.get_mut(key)?;
        entry.last_used = now;
        Some(entry.value.clone())
    }

    /// Stores `value` under `key` (replacing what was there), then drops
    /// the least recently used other entries until the total fits the
    /// budget. Returns the keys dropped.
    pub fn insert(&self, key: String, value: V, bytes: u64) -> Vec<String> {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        if let Some(old) = state.entries.insert(
            key.clone(),
            Entry {
                value,
                bytes,
                last_used: now,
            },
        ) {
            state.total -= old.bytes;
        }
        state.total += bytes;
        let mut dropped = Vec::new();
        while state.total > self.budget {
            let Some(oldest) = state
                .entries
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = state.entries.remove(&oldest) {
                state.total -= e.bytes;
            }
            dropped.push(oldest);
        }
        dropped
    }

    /// Drops `key`; whether it was there.
    pub fn remove(&self, key: &str) -> bool {
        let mut state = self.lock();
        match state.entries.remove(key) {
            Some(e) => {
                state.total -= e.bytes;
                true
            }
            None => false,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.lock().total
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<V>> {
        self.state.lock().expect("loaded-plugin cache lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_when_over_budget() {
        let lru = ByteLru::new(100);
        assert!(lru.insert("a".into(), 1, 40).is_empty());
        assert!(lru.insert("b".into(), 2, 40).is_empty());
        // `a` used after `b`: `b` is now the least recently used.
        assert_eq!(lru.get("a"), Some(1));
        assert_eq!(lru.insert("c".into(), 3, 40), vec!["b".to_string()]);
        assert_eq!(lru.get("b"), None);
        assert_eq!((lru.get("a"), lru.get("c")), (Some(1), Some(3)));
        assert_eq!(lru.bytes(), 80);
    }

    #[test]
    fn one_entry_larger_than_the_budget_is_still_kept_alone() {
        let lru = ByteLru::new(10);
        lru.insert("small".into(), 1, 5);
        assert_eq!(lru.insert("huge".into(), 2, 50), vec!["small".to_string()]);
        assert_eq!(lru.get("huge"), Some(2));
        assert_eq!(lru.len(), 1);
    }

    #[test]
    fn replacing_and_removing_keep_the_byte_count_exact() {
        let lru = ByteLru::new(1000);
        lru.insert("a".into(), 1, 100);
        lru.insert("a".into(), 2, 30);
        assert_eq!(lru.bytes(), 30);
        assert!(lru.remove("a"));
        assert!(!lru.remove("a"));
        assert_eq!(lru.bytes(), 0);
        assert!(lru.is_empty());
    }
}
