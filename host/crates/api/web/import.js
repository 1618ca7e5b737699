// Reading a dataset file in the browser, with the same rules as
// `assay dataset import` (host/src/dataset_file.rs):
// * JSONL / NDJSON: one object per line with `input`, an optional expected
//   output (`expectedOutput`, `expected_output`, `expected`, `groundTruth`,
//   `ground_truth`) and an optional `context` (or `metadata`); other fields
//   are folded into the context object; blank lines are skipped.
// * CSV / TSV: a header with an `input` column, optionally one
//   expected-output column; every other column becomes a context field.
//   Cells that look like JSON are parsed as JSON; empty cells are absent.
// * JSON: an array of objects shaped like the JSONL lines.
// Errors name the line; nothing is sent when one line is bad.

export const EXPECTED_FIELDS = ['expectedOutput', 'expected_output', 'expected', 'groundTruth', 'ground_truth'];
export const CONTEXT_FIELDS = ['context', 'metadata'];
const MAX_ERRORS = 10;

/** An error in a file, with the line numbers at fault. */
export class FileError extends Error {
  constructor(name, errors) {
    super(errors.map((e) => (e.line ? `${name}: line ${e.line}: ${e.message}` : `${name}: ${e.message}`)).join('\n'));
    this.name = 'FileError';
    this.errors = errors;
  }
}

function typeName(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function misspelling(key) {
  const lower = key.toLowerCase();
  if (['input', 'inputs', 'imput'].includes(lower)) return 'input';
  if (lower.startsWith('expect') || lower.startsWith('ground')) return 'expectedOutput';
  if (['context', 'metadata', 'contexts'].includes(lower)) return 'context';
  return null;
}

/** One JSON object to an item `{input, expectedOutput?, context?}`. */
export function itemFromValue(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`expected a JSON object with an \`input\` field, found ${typeName(value)}`);
  }
  let input;
  let hasInput = false;
  let expected = null;
  let context = null;
  const extra = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === 'input') {
      input = v;
      hasInput = true;
    } else if (EXPECTED_FIELDS.includes(key)) {
      if (expected) throw new Error(`both \`${expected[0]}\` and \`${key}\` are set; keep one expected output`);
      expected = [key, v];
    } else if (CONTEXT_FIELDS.includes(key)) {
      if (context) throw new Error(`both \`${context[0]}\` and \`${key}\` are set; keep one`);
      context = [key, v];
    } else {
      const meant = misspelling(key);
      if (meant) throw new Error(`unknown field \`${key}\`; did you mean \`${meant}\`?`);
      extra[key] = v;
    }
  }
  if (!hasInput) throw new Error('missing `input`');
  if (input === null) throw new Error('`input` is null');
  const item = { input };
  if (expected && expected[1] !== null) item.expectedOutput = expected[1];
  let ctx = context && context[1] !== null ? context[1] : undefined;
  if (Object.keys(extra).length) {
    if (ctx === undefined) ctx = extra;
    else if (typeof ctx === 'object' && !Array.isArray(ctx)) {
      for (const [k, v] of Object.entries(extra)) {
        if (k in ctx) throw new Error(`field \`${k}\` is both a top-level field and a key of \`context\``);
        ctx[k] = v;
      }
    } else {
      const keys = Object.keys(extra).map((k) => `\`${k}\``).join(', ');
      throw new Error(`extra fields ${keys} cannot be merged into a \`context\` that is not an object`);
    }
  }
  if (ctx !== undefined) item.context = ctx;
  return item;
}

function collect(name, each) {
  const items = [];
  const errors = [];
  each((line, fn) => {
    try {
      items.push(fn());
    } catch (e) {
      errors.push({ line, message: e.message });
    }
    return errors.length < MAX_ERRORS;
  });
  if (errors.length) throw new FileError(name, errors);
  return items;
}

export function parseJsonl(text, name) {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  return collect(name, (visit) => {
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (!line) continue;
      const keepGoing = visit(i + 1, () => {
        let value;
        try {
          value = JSON.parse(line);
        } catch (e) {
          throw new Error(`invalid JSON: ${e.message}`);
        }
        return itemFromValue(value);
      });
      if (!keepGoing) return;
    }
  });
}

export function parseJsonArray(text, name) {
  let value;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new FileError(name, [{ message: `invalid JSON: ${e.message}` }]);
  }
  if (!Array.isArray(value)) throw new FileError(name, [{ message: `expected a JSON array of items, found ${typeName(value)}` }]);
  return collect(name, (visit) => {
    for (let i = 0; i < value.length; i++) {
      if (!visit(null, () => {
        try {
          return itemFromValue(value[i]);
        } catch (e) {
          throw new Error(`item ${i}: ${e.message}`);
        }
      })) return;
    }
  });
}

/** RFC 4180 records (quoted fields may hold delimiters, quotes and newlines). */
export function csvRecords(text, delimiter) {
  const records = [];
  let record = [];
  let fieldText = '';
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          fieldText += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        fieldText += c;
      }
    } else if (c === '"' && fieldText === '') {
      quoted = true;
    } else if (c === delimiter) {
      record.push(fieldText);
      fieldText = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      record.push(fieldText);
      records.push({ line: recordLine, cells: record });
      record = [];
      fieldText = '';
      line++;
      recordLine = line;
    } else {
      fieldText += c;
    }
  }
  if (quoted) throw new Error(`line ${recordLine}: a quoted field is not closed`);
  if (fieldText !== '' || record.length) {
    record.push(fieldText);
    records.push({ line: recordLine, cells: record });
  }
  return records.filter((r) => !(r.cells.length === 1 && r.cells[0] === ''));
}

function cellValue(cell) {
  if (cell === '') return undefined;
  const t = cell.trim();
  if (/^[[{"]/.test(t) || /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(t) || ['true', 'false', 'null'].includes(t)) {
    try {
      return JSON.parse(t);
    } catch {
      return cell;
    }
  }
  return cell;
}

export function parseCsv(text, name, delimiter = ',') {
  let records;
  try {
    records = csvRecords(text.replace(/^\uFEFF/, ''), delimiter);
  } catch (e) {
    throw new FileError(name, [{ message: e.message }]);
  }
  if (!records.length) throw new FileError(name, [{ message: 'the file is empty (no header)' }]);
  const names = records[0].cells.map((n) => n.trim());
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new FileError(name, [{ message: `the header names column \`${dup}\` twice` }]);
  let inputCol = names.indexOf('input');
  if (inputCol < 0) inputCol = names.findIndex((n) => n.toLowerCase() === 'input');
  if (inputCol < 0) throw new FileError(name, [{ message: `the header has no \`input\` column (columns: ${names.join(', ')})` }]);
  const expectedCols = names.map((n, i) => [n, i]).filter(([n]) => EXPECTED_FIELDS.some((f) => f.toLowerCase() === n.toLowerCase()));
  if (expectedCols.length > 1) {
    throw new FileError(name, [{ message: `the header has several expected-output columns: ${expectedCols.map(([n]) => n).join(', ')}` }]);
  }
  const expectedCol = expectedCols.length ? expectedCols[0][1] : -1;
  return collect(name, (visit) => {
    for (const { line, cells } of records.slice(1)) {
      const keepGoing = visit(line, () => {
        if (cells.length !== names.length) throw new Error(`expected ${names.length} cells, found ${cells.length}`);
        const input = cellValue(cells[inputCol]);
        if (input === undefined || input === null) throw new Error('the `input` cell is empty');
        const item = { input };
        const expected = expectedCol >= 0 ? cellValue(cells[expectedCol]) : undefined;
        if (expected !== undefined && expected !== null) item.expectedOutput = expected;
        const context = {};
        names.forEach((n, i) => {
          if (i === inputCol || i === expectedCol) return;
          const v = cellValue(cells[i]);
          if (v !== undefined) context[n] = v;
        });
        if (Object.keys(context).length) item.context = context;
        return item;
      });
      if (!keepGoing) return;
    }
  });
}

/** Items of a file by its extension (`.jsonl`, `.ndjson`, `.csv`, `.tsv`, `.json`). */
export function parseDatasetFile(name, text) {
  const ext = name.toLowerCase().split('.').pop();
  if (ext === 'jsonl' || ext === 'ndjson') return parseJsonl(text, name);
  if (ext === 'csv') return parseCsv(text, name, ',');
  if (ext === 'tsv') return parseCsv(text, name, '\t');
  if (ext === 'json') return parseJsonArray(text, name);
  throw new FileError(name, [{ message: 'unknown file type: use .jsonl, .ndjson, .csv, .tsv or .json' }]);
}
