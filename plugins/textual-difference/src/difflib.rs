//! A port of the parts of Python's `difflib.SequenceMatcher` that
//! `ratio()` needs, with no junk function and difflib's `autojunk`
//! heuristic. Elements are compared with `==`; for text, use chars.

use std::collections::HashMap;
use std::hash::Hash;

/// A matching block: `a[a..a + size] == b[b..b + size]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Match {
    /// Start in `a`.
    pub a: usize,
    /// Start in `b`.
    pub b: usize,
    /// Length.
    pub size: usize,
}

/// Finds the matching blocks of two sequences, like difflib's
/// `SequenceMatcher(None, a, b, autojunk)`.
pub struct SequenceMatcher<'s, T> {
    a: &'s [T],
    b: &'s [T],
    /// Positions of each non-popular element of `b`, ascending.
    b2j: HashMap<&'s T, Vec<usize>>,
}

impl<'s, T: Eq + Hash> SequenceMatcher<'s, T> {
    /// Indexes `b`. With `autojunk` and `b.len() >= 200`, elements that occur
    /// more than `b.len() / 100 + 1` times are popular: they cannot start a
    /// match (difflib's heuristic).
    pub fn new(a: &'s [T], b: &'s [T], autojunk: bool) -> Self {
        let mut b2j: HashMap<&T, Vec<usize>> = HashMap::new();
        for (j, elt) in b.iter().enumerate() {
            b2j.entry(elt).or_default().push(j);
        }
        if autojunk && b.len() >= 200 {
            let ntest = b.len() / 100 + 1;
            b2j.retain(|_, positions| positions.len() <= ntest);
        }
        Self { a, b, b2j }
    }

    /// The longest matching block in `a[alo..ahi]` and `b[blo..bhi]`; among
    /// equally long ones, the one starting earliest in `a`, then in `b`.
    pub fn find_longest_match(&self, alo: usize, ahi: usize, blo: usize, bhi: usize) -> Match {
        let (a, b) = (self.a, self.b);
        let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0);
        // j2len[j] = length of the longest match ending at a[i - 1] and b[j].
        let mut j2len: HashMap<usize, usize> = HashMap::new();
        for (i, elt) in a.iter().enumerate().take(ahi).skip(alo) {
            let mut new_j2len = HashMap::new();
            if let Some(positions) = self.b2j.get(elt) {
                for &j in positions {
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    let k = j
                        .checked_sub(1)
                        .and_then(|p| j2len.get(&p))
                        .copied()
                        .unwrap_or(0)
                        + 1;
                    new_j2len.insert(j, k);
                    if k > bestsize {
                        (besti, bestj, bestsize) = (i + 1 - k, j + 1 - k, k);
                    }
                }
            }
            j2len = new_j2len;
        }
        // Popular elements are not junk: extend the match over them.
        while besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1] {
            (besti, bestj, bestsize) = (besti - 1, bestj - 1, bestsize + 1);
        }
        while besti + bestsize < ahi
            && bestj + bestsize < bhi
            && a[besti + bestsize] == b[bestj + bestsize]
        {
            bestsize += 1;
        }
        Match {
            a: besti,
            b: bestj,
            size: bestsize,
        }
    }

    /// All matching blocks, in order, without the final zero-size sentinel.
    pub fn matching_blocks(&self) -> Vec<Match> {
        let mut queue = vec![(0, self.a.len(), 0, self.b.len())];
        let mut blocks = Vec::new();
        while let Some((alo, ahi, blo, bhi)) = queue.pop() {
            let m = self.find_longest_match(alo, ahi, blo, bhi);
            if m.size > 0 {
                if alo < m.a && blo < m.b {
                    queue.push((alo, m.a, blo, m.b));
                }
                if m.a + m.size < ahi && m.b + m.size < bhi {
                    queue.push((m.a + m.size, ahi, m.b + m.size, bhi));
                }
                blocks.push(m);
            }
        }
        blocks.sort();
        blocks
    }

    /// `2 * M / T`: M matched elements, T elements in both; 1 when both are empty.
    pub fn ratio(&self) -> f64 {
        let total = self.a.len() + self.b.len();
        if total == 0 {
            return 1.0;
        }
        let matched: usize = self.matching_blocks().iter().map(|m| m.size).sum();
        2.0 * matched as f64 / total as f64
    }

    /// The number of non-equal opcodes (replace, delete or insert regions).
    pub fn changes(&self) -> usize {
        let mut changes = 0;
        let (mut i, mut j) = (0, 0);
        let end = Match {
            a: self.a.len(),
            b: self.b.len(),
            size: 0,
        };
        for m in self.matching_blocks().into_iter().chain([end]) {
            if i < m.a || j < m.b {
                changes += 1;
            }
            (i, j) = (m.a + m.size, m.b + m.size);
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn ratio(a: &str, b: &str) -> f64 {
        let (a, b) = (chars(a), chars(b));
        SequenceMatcher::new(&a, &b, true).ratio()
    }

    fn changes(a: &str, b: &str) -> usize {
        let (a, b) = (chars(a), chars(b));
        SequenceMatcher::new(&a, &b, true).changes()
    }

    /// Expected values computed with CPython's `difflib.SequenceMatcher(None, a, b)`.
    #[test]
    fn matches_python_difflib() {
        let cases: &[(&str, &str, f64, usize)] = &[
            ("abcd", "bcde", 0.75, 2),
            ("", "", 1.0, 0),
            ("abc", "", 0.0, 1),
            (
                "The quick brown fox",
                "The quick brown dog",
                0.8947368421052632,
                2,
            ),
            ("hello world", "world hello", 0.45454545454545453, 2),
            ("qabxcd", "abycdf", 0.6666666666666666, 3),
            (
                "private Thread currentThread;",
                "private volatile Thread currentThread;",
                0.8656716417910447,
                1,
            ),
            ("café au lait", "cafe au lait", 0.9166666666666666, 1),
        ];
        for &(a, b, want, want_changes) in cases {
            assert!(
                (ratio(a, b) - want).abs() < 1e-15,
                "ratio({a:?}, {b:?}) = {} != {want}",
                ratio(a, b)
            );
            assert_eq!(changes(a, b), want_changes, "changes({a:?}, {b:?})");
        }
    }

    #[test]
    fn autojunk_on_long_sequences_matches_python() {
        let a = ["the cat sat on the mat"; 12].join(" ");
        let b = ["the dog sat on the log"; 12].join(" ");
        let (a, b) = (chars(&a), chars(&b));
        assert!((SequenceMatcher::new(&a, &b, true).ratio() - 0.014545454545454545).abs() < 1e-15);
        assert!((SequenceMatcher::new(&a, &b, false).ratio() - 0.7381818181818182).abs() < 1e-15);
    }

    #[test]
    fn longest_match_prefers_earliest() {
        let (a, b) = (chars(" abcd"), chars("abcd abcd"));
        let m = SequenceMatcher::new(&a, &b, true).find_longest_match(0, 5, 0, 9);
        assert_eq!(
            m,
            Match {
                a: 0,
                b: 4,
                size: 5
            }
        );
    }
}
