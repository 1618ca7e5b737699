// Turning API values into text for tables and panels.

/** A JSON value as text: strings as they are, everything else as JSON. */
export function text(value) {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** Pretty JSON for detail panels and editors. */
export function pretty(value) {
  if (value === undefined || value === null) return '';
  return JSON.stringify(value, null, 2);
}

/** At most `n` characters, with an ellipsis. */
export function clip(s, n = 80) {
  s = String(s ?? '');
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function number(n) {
  return n === undefined || n === null ? '–' : Number(n).toLocaleString('en-US');
}

export function score(v) {
  return v === undefined || v === null ? '–' : Number(v).toFixed(3);
}

/** A CSS class for a score in [0, 1]: good, mid or bad. */
export function scoreClass(v) {
  if (v === undefined || v === null) return 'score none';
  return v >= 0.8 ? 'score good' : v >= 0.5 ? 'score mid' : 'score bad';
}

export function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return d.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
}

/** 3.2 s, 4 min 10 s, 1 h 2 min. */
export function duration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** Parses JSON typed in an editor; a bare word that is not JSON is a string. */
export function parseLoose(s) {
  const t = s.trim();
  if (t === '') return undefined;
  try {
    return JSON.parse(t);
  } catch {
    if (/^[[{"]/.test(t)) throw new Error(`not valid JSON: ${clip(t, 40)}`);
    return s;
  }
}
