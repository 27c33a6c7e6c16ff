/**
 * The NDJSON edge from columns (issue 14): version-1 record lines encoded straight from a batch's
 * columns, without a row object per record and without `JSON.stringify` per record.
 *
 * `encodeBatchLines(b, emit)` gives, line for line, exactly what `encodeRecord` (protocol.ts) gives
 * for `recordsOf(b)` (property-tested in test/unit/ndjson-edge.test.ts). How:
 * - a per-schema encoder function, generated once per (field names, column kinds) and cached: the
 *   field names are JSON-escaped once, in the order a JS object built from `fields` enumerates
 *   them (integer-like names first, ascending; ECMAScript OrdinaryOwnPropertyKeys), which is the
 *   order `JSON.stringify(value(i))` writes;
 * - numbers from `float64()` (NaN: null) printed with `String()`, which is the same text as
 *   `JSON.stringify` of a finite number (both are Number::toString); non-finite values print null;
 * - strings from `dictionary()`: each distinct value is `JSON.stringify`d once per batch; other
 *   strings through `JSON.stringify` (escaping exactly as before);
 * - int64 beyond ±(2^53 − 1): such a column has no `float64()`, and `get(i)` gives its exact decimal
 *   string, written as the row path writes it (a JSON string), never a rounded number;
 * - any other column (nested values, JSON text, untyped columns): `JSON.stringify(get(i))`.
 *
 * Only batches whose rows are exactly their columns take this path: `complete` (every record's
 * value is an object holding every field of `fields`), every field has a column, no field is
 * `__proto__`. Any other batch (array-backed batches of row producers, whose values keep their own
 * key order; Arrow batches with missing fields or non-object values) goes through `recordsOf` and
 * `encodeRecord`, as before.
 */
import { type Column, type RecordBatch, recordsOf } from './batch.js';
import { encodeRecord } from './protocol.js';

/** How one value column is read: typed numbers, dictionary strings, booleans, or any value. */
type Kind = 'num' | 'dict' | 'bool' | 'any';

/** The per-column input of a generated encoder (one of these per field, by kind). */
type ColInput = Float64Array | { codes: Int32Array; text: readonly string[] } | Column;

type Encoder = (
  n: number,
  ts: Float64Array,
  key: (i: number) => string,
  cols: readonly ColInput[],
  tail: ((i: number) => string) | undefined,
  emit: (line: string) => void,
) => void;

/** Generated encoders by schema signature (field names and kinds). Bounded: a few schemas per run. */
const cache = new Map<string, Encoder>();
const CACHE_MAX = 256;

/** The JSON text of a value as it appears inside an object (undefined: the row path decides). */
function anyText(c: Column, i: number): string {
  const t = JSON.stringify(c.get(i));
  return t === undefined ? 'null' : t;
}

/** The order in which a JS object built by assigning `fields` in order enumerates its keys. */
function objectOrder(fields: readonly string[]): string[] {
  const o: Record<string, true> = Object.create(null);
  for (const f of fields) o[f] = true;
  return Object.keys(o);
}

/** JSON text of each dictionary value, computed once per values array. */
const dictText = new WeakMap<readonly string[], string[]>();
function textsOf(values: readonly string[]): string[] {
  let t = dictText.get(values);
  if (!t) {
    t = values.map((v) => JSON.stringify(v));
    dictText.set(values, t);
  }
  return t;
}

function kindOf(c: Column): Kind {
  if (c.typed) {
    if (c.float64() !== undefined) return 'num';
    if (c.dictionary() !== undefined) return 'dict';
    if (c.type === 'boolean') return 'bool';
  }
  return 'any';
}

/** Generates the encoder of one signature: one template literal per line. */
function generate(names: readonly string[], kinds: readonly Kind[]): Encoder {
  const pre: string[] = [];
  const body: string[] = [];
  const parts: string[] = [];
  kinds.forEach((k, c) => {
    const label = `${c === 0 ? '' : ','}${JSON.stringify(names[c])}:`;
    pre.push(`const p${c} = ${JSON.stringify(label)};`);
    switch (k) {
      case 'num':
        pre.push(`const f${c} = cols[${c}];`);
        body.push(`const x${c} = f${c}[i];`);
        parts.push(`\${p${c}}\${x${c} - x${c} === 0 ? x${c} : 'null'}`);
        break;
      case 'dict':
        pre.push(`const c${c} = cols[${c}].codes, t${c} = cols[${c}].text;`);
        body.push(`const k${c} = c${c}[i];`);
        parts.push(`\${p${c}}\${k${c} < 0 ? 'null' : t${c}[k${c}]}`);
        break;
      case 'bool':
        pre.push(`const b${c} = cols[${c}];`);
        body.push(`const v${c} = b${c}.get(i);`);
        parts.push(`\${p${c}}\${v${c} === null ? 'null' : v${c} ? 'true' : 'false'}`);
        break;
      default:
        pre.push(`const a${c} = cols[${c}];`);
        parts.push(`\${p${c}}\${anyText(a${c}, i)}`);
        break;
    }
  });
  const src = `${pre.join('\n')}
for (let i = 0; i < n; i++) {
  ${body.join('\n  ')}
  const line = \`{"ts":\${ts[i]},"key":\${key(i)},"value":{${parts.join('')}}\`;
  emit(tail === undefined ? \`\${line}}\` : \`\${line}\${tail(i)}}\`);
}`;
  const make = new Function('anyText', `return function (n, ts, key, cols, tail, emit) {\n${src}\n};`);
  return make(anyText) as Encoder;
}

/** The record key's JSON text per row (`null` for a null key), dictionary values encoded once. */
function keyText(k: Column): (i: number) => string {
  const d = k.typed ? k.dictionary() : undefined;
  if (d) {
    const codes = d.codes;
    const text = textsOf(d.values);
    return (i) => {
      const c = codes[i];
      return c < 0 ? 'null' : text[c];
    };
  }
  return (i) => {
    const v = k.get(i);
    return v == null ? 'null' : JSON.stringify(v);
  };
}

/** `,"prov":…,"headers":…` of row i, as encodeRecord writes them, when the batch has either. */
function tailOf(b: RecordBatch): ((i: number) => string) | undefined {
  const prov = b.prov?.bind(b);
  const headers = b.headers?.bind(b);
  if (!prov && !headers) return undefined;
  return (i) => {
    let s = '';
    const p = prov?.(i);
    if (p !== undefined) s += `,"prov":${JSON.stringify(p)}`;
    const h = headers?.(i);
    if (h !== undefined) s += `,"headers":${JSON.stringify(h)}`;
    return s;
  };
}

/**
 * Encodes every record of `b` as a version-1 record line (no newline), in row order, calling
 * `emit` once per line. Same text as `encodeRecord(r)` for each `r` of `recordsOf(b)`.
 * @param b any batch; complete batches are encoded from their columns (see the module comment)
 * @param emit receives each line
 */
export function encodeBatchLines(b: RecordBatch, emit: (line: string) => void): void {
  const n = b.length;
  if (n === 0) return;
  const fields = b.complete === true ? objectOrder(b.fields) : undefined;
  const cols: Column[] = [];
  if (fields) {
    for (const f of fields) {
      const c = f === '__proto__' ? undefined : b.column(f);
      if (!c) break;
      cols.push(c);
    }
  }
  if (!fields || cols.length !== fields.length) {
    for (const r of recordsOf(b)) emit(encodeRecord(r));
    return;
  }
  const kinds = cols.map(kindOf);
  const sig = JSON.stringify([fields, kinds]);
  let enc = cache.get(sig);
  if (!enc) {
    if (cache.size >= CACHE_MAX) cache.clear();
    enc = generate(fields, kinds);
    cache.set(sig, enc);
  }
  const inputs: ColInput[] = cols.map((c, j) => {
    switch (kinds[j]) {
      case 'num':
        return c.float64() as Float64Array;
      case 'dict': {
        const d = c.dictionary() as { codes: Int32Array; values: readonly string[] };
        return { codes: d.codes, text: textsOf(d.values) };
      }
      default:
        return c;
    }
  });
  enc(n, b.ts, keyText(b.key), inputs, tailOf(b), emit);
}
