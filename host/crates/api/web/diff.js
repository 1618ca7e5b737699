// A word-level diff (longest common subsequence) of an output against its
// ground truth, for the result panel. Inputs past MAX_TOKENS are not
// diffed (quadratic table); the panel then shows both texts as they are.

export const MAX_TOKENS = 3000;

function tokens(s) {
  return s.match(/\s+|[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu) || [];
}

/**
 * [{op: 'same'|'add'|'del', text}] turning `expected` into `actual`, or
 * null when the texts are too long to diff.
 */
export function diffWords(expected, actual) {
  const a = tokens(expected);
  const b = tokens(actual);
  if (a.length > MAX_TOKENS || b.length > MAX_TOKENS) return null;
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: length of the LCS of a[i..] and b[j..], one row per i.
  const lcs = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  const push = (op, text) => {
    const last = out[out.length - 1];
    if (last && last.op === op) last.text += text;
    else out.push({ op, text });
  };
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      push('same', a[i]);
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      push('del', a[i++]);
    } else {
      push('add', b[j++]);
    }
  }
  while (i < n) push('del', a[i++]);
  while (j < m) push('add', b[j++]);
  return out;
}
