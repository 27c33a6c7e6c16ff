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
import type { LineBytes } from './output.js';
import { encodeRecord } from './protocol.js';

/** How one value column is read: typed numbers, dictionary strings, booleans, or any value. */
type Kind = 'num' | 'dict' | 'bool' | 'any';

/** The per-column input of a generated encoder (one of these per field, by kind). */
type ColInput =
  | Float64Array
  | { codes: Int32Array; text: readonly string[] }
  | (DictBytes & { codes: Int32Array })
  | Column;

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

// ---------------------------------------------------------------------------------------------
// Bytes: the same lines written straight into a Buffer (`encodeBatchBytes`). Measured on the
// 3M-flight CSV -> NDJSON run: building one template string per line and turning 64 KiB of them
// into UTF-8 (`Buffer.from` flattens the rope) took about 2 CPU s; writing the bytes takes ~0.4 s.

/** The JSON texts of a dictionary's values as UTF-8: value c is `bytes[off[c], off[c + 1])`. */
interface DictBytes {
  bytes: Uint8Array;
  off: Int32Array;
  /** Longest text, in bytes. */
  max: number;
}

const dictBytes = new WeakMap<readonly string[], DictBytes>();

/** The JSON texts of `values` as UTF-8 (computed once per values array). */
function bytesOf(values: readonly string[]): DictBytes {
  let d = dictBytes.get(values);
  if (d) return d;
  const texts = textsOf(values);
  const all = texts.join('');
  const bytes = Buffer.from(all, 'utf8');
  const off = new Int32Array(texts.length + 1);
  let max = 0;
  const ascii = bytes.length === all.length;
  for (let c = 0, at = 0; c < texts.length; c++) {
    const len = ascii ? texts[c].length : Buffer.byteLength(texts[c], 'utf8');
    if (len > max) max = len;
    at += len;
    off[c + 1] = at;
  }
  d = { bytes, off, max };
  dictBytes.set(values, d);
  return d;
}

/** Writes the decimal digits of a non-negative integer below 2^31 at p; returns the new end. */
function writeUint31(o: Uint8Array, p: number, v: number): number {
  let len = 1;
  for (let t = v; t >= 10; t = (t / 10) | 0) len++;
  let q = p + len;
  for (let t = v; ; ) {
    const d = (t / 10) | 0;
    o[--q] = 48 + t - d * 10;
    if (d === 0) break;
    t = d;
  }
  return p + len;
}

/** Writes an ASCII string (a number's text) at p; returns the new end. */
function writeAscii(o: Uint8Array, p: number, s: string): number {
  for (let j = 0; j < s.length; j++) o[p + j] = s.charCodeAt(j);
  return p + s.length;
}

/**
 * Writes `String(x)` at p (the text `JSON.stringify` and template literals give a finite number):
 * integers of magnitude below 2^53 digit by digit (`-0` is `0`), anything else through `String`.
 * @returns the new end (at most 25 bytes further)
 */
function writeNumber(o: Uint8Array, p: number, x: number): number {
  if (Number.isInteger(x) && x < 9007199254740992 && x > -9007199254740992) {
    if (x < 0) {
      o[p++] = 45;
      x = -x;
    }
    if (x < 2147483648) return writeUint31(o, p, x);
    // Two halves: the high part, then the low nine digits with their leading zeros.
    let hi = Math.floor(x / 1e9);
    let lo = x - hi * 1e9;
    if (lo < 0) {
      // x / 1e9 rounded up to the next integer
      hi--;
      lo += 1e9;
    }
    p = writeUint31(o, p, hi);
    for (let q = p + 8; q >= p; q--) {
      const d = (lo / 10) | 0;
      o[q] = 48 + lo - d * 10;
      lo = d;
    }
    return p + 9;
  }
  return writeAscii(o, p, String(x));
}

/** Writes `s` as UTF-8 at p (ASCII byte by byte; the rest through Buffer's encoder); returns the new end. */
function writeText(o: Buffer, p: number, s: string): number {
  const n = s.length;
  for (let j = 0; j < n; j++) {
    const c = s.charCodeAt(j);
    if (c >= 0x80) return p + j + o.write(s.slice(j), p + j, 'utf8');
    o[p + j] = c;
  }
  return p + n;
}

/** Helpers the generated byte encoders call. */
const helpers = { writeNumber, writeText, anyText };

type ByteEncoder = (
  n: number,
  ts: Float64Array,
  key: DictBytes & { codes: Int32Array },
  keyText: ((i: number) => string) | undefined,
  cols: readonly ColInput[],
  tail: ((i: number) => string) | undefined,
  w: LineBytes,
) => void;

const byteCache = new Map<string, ByteEncoder>();

/** The statements writing the constant ASCII text `s` at p (unrolled stores). */
function storeConst(s: string): string {
  const out: string[] = [];
  for (let j = 0; j < s.length; j++) out.push(`o[p + ${j}] = ${s.charCodeAt(j)};`);
  return `${out.join(' ')} p += ${s.length};`;
}

/**
 * Generates the byte encoder of one signature. Per row: the texts of `any` columns and of the
 * tail first (their length bounds the line), one room check for the whole line, then the stores.
 * Field labels are constant bytes (escaped once; non-ASCII names are written as UTF-8 text).
 */
function generateBytes(
  names: readonly string[],
  kinds: readonly Kind[],
  keyDict: boolean,
  valueOnly = false,
): ByteEncoder {
  const pre: string[] = [];
  const texts: string[] = [];
  const body: string[] = [];
  let fixed = 0;
  let bound = '0';
  const label = (s: string): string => {
    fixed += 3 * s.length;
    if (/^[\x20-\x7e]*$/.test(s)) return storeConst(s);
    pre.push(`const L${body.length} = ${JSON.stringify(s)};`);
    return `p = writeText(o, p, L${body.length});`;
  };
  if (valueOnly) body.push(label('{'));
  else {
    body.push(label('{"ts":'));
    body.push('p = writeNumber(o, p, ts[i]);');
    fixed += 25;
    body.push(label(',"key":'));
  }
  if (valueOnly) {
    // the value alone: no key
  } else if (keyDict) {
    pre.push('const kc = key.codes, kb = key.bytes, ko = key.off;');
    bound += ' + key.max';
    body.push(
      '{ const k = kc[i]; if (k < 0) { o[p] = 110; o[p + 1] = 117; o[p + 2] = 108; o[p + 3] = 108; p += 4; } else for (let j = ko[k], e = ko[k + 1]; j < e; j++) o[p++] = kb[j]; }',
    );
    fixed += 4;
  } else {
    texts.push('const kt = keyText(i);');
    bound += ' + 3 * kt.length';
    body.push('p = writeText(o, p, kt);');
  }
  if (!valueOnly) body.push(label(',"value":{'));
  kinds.forEach((k, c) => {
    body.push(label(`${c === 0 ? '' : ','}${JSON.stringify(names[c])}:`));
    switch (k) {
      case 'num':
        pre.push(`const f${c} = cols[${c}];`);
        body.push(
          `{ const x = f${c}[i]; if (x - x === 0) p = writeNumber(o, p, x); else { o[p] = 110; o[p + 1] = 117; o[p + 2] = 108; o[p + 3] = 108; p += 4; } }`,
        );
        fixed += 25;
        break;
      case 'dict':
        pre.push(`const c${c} = cols[${c}].codes, b${c} = cols[${c}].bytes, o${c} = cols[${c}].off;`);
        bound += ` + cols[${c}].max`;
        fixed += 4;
        body.push(
          `{ const k = c${c}[i]; if (k < 0) { o[p] = 110; o[p + 1] = 117; o[p + 2] = 108; o[p + 3] = 108; p += 4; } else for (let j = o${c}[k], e = o${c}[k + 1]; j < e; j++) o[p++] = b${c}[j]; }`,
        );
        break;
      case 'bool':
        pre.push(`const b${c} = cols[${c}];`);
        fixed += 5;
        body.push(
          `{ const v = b${c}.get(i); if (v === null) { o[p] = 110; o[p + 1] = 117; o[p + 2] = 108; o[p + 3] = 108; p += 4; } else if (v) { o[p] = 116; o[p + 1] = 114; o[p + 2] = 117; o[p + 3] = 101; p += 4; } else { o[p] = 102; o[p + 1] = 97; o[p + 2] = 108; o[p + 3] = 115; o[p + 4] = 101; p += 5; } }`,
        );
        break;
      default:
        pre.push(`const a${c} = cols[${c}];`);
        texts.push(`const t${c} = anyText(a${c}, i);`);
        bound += ` + 3 * t${c}.length`;
        body.push(`p = writeText(o, p, t${c});`);
        break;
    }
  });
  body.push('o[p++] = 125;');
  if (!valueOnly) {
    texts.push("const tl = tail === undefined ? '' : tail(i);");
    bound += ' + 3 * tl.length';
    body.push('if (tl.length > 0) p = writeText(o, p, tl);');
    body.push('o[p++] = 125;');
  }
  body.push('o[p++] = 10;');
  fixed += 3;
  const src = `const { writeNumber, writeText, anyText } = h;
return function (n, ts, key, keyText, cols, tail, w) {
  ${pre.join('\n  ')}
  let o = w.buf, p = w.pos;
  for (let i = 0; i < n; i++) {
    ${texts.join('\n    ')}
    const need = ${fixed} + ${bound};
    if (p + need > o.length) { w.pos = p; w.grow(need); o = w.buf; p = w.pos; }
    ${body.join('\n    ')}
  }
  w.pos = p;
  w.lines += n;
};`;
  return new Function('h', src)(helpers) as ByteEncoder;
}

/**
 * Encodes every record of `b` as a version-1 record line followed by `\n`, as UTF-8 bytes into
 * `w` (a LineWriter's `bytes()`): the same bytes as `encodeBatchLines` gives (and so as
 * `encodeRecord`), one line per record, in row order.
 * @returns false, having written nothing, for a batch that must take the row path (not
 *   `complete`, a field without a column, a field named `__proto__`): use `encodeBatchLines`
 */
export function encodeBatchBytes(b: RecordBatch, w: LineBytes): boolean {
  return encodeBytes(b, w, false);
}

/**
 * Encodes the value of every record of `b` as one JSON line (`JSON.stringify(value)` and `\n`),
 * as UTF-8 bytes into `w`: the `"value"` part of `encodeBatchBytes`' lines (the same generated
 * encoder without the event time, key, provenance and headers). What `kappa sink -` writes.
 * @returns false, having written nothing, for a batch that must take the row path (as
 *   `encodeBatchBytes`): then write `JSON.stringify(r.value)` of each of `recordsOf(b)`
 */
export function encodeValueBytes(b: RecordBatch, w: LineBytes): boolean {
  return encodeBytes(b, w, true);
}

function encodeBytes(b: RecordBatch, w: LineBytes, valueOnly: boolean): boolean {
  const n = b.length;
  if (n === 0) return true;
  if (b.complete !== true) return false;
  const fields = objectOrder(b.fields);
  const cols: Column[] = [];
  for (const f of fields) {
    const c = f === '__proto__' ? undefined : b.column(f);
    if (!c) return false;
    cols.push(c);
  }
  const kinds = cols.map(kindOf);
  const kd = !valueOnly && b.key.typed ? b.key.dictionary() : undefined;
  const sig = JSON.stringify([fields, kinds, kd !== undefined, valueOnly]);
  let enc = byteCache.get(sig);
  if (!enc) {
    if (byteCache.size >= CACHE_MAX) byteCache.clear();
    enc = generateBytes(fields, kinds, kd !== undefined, valueOnly);
    byteCache.set(sig, enc);
  }
  const inputs: ColInput[] = cols.map((c, j) => {
    switch (kinds[j]) {
      case 'num':
        return c.float64() as Float64Array;
      case 'dict': {
        const d = c.dictionary() as { codes: Int32Array; values: readonly string[] };
        return { codes: d.codes, ...bytesOf(d.values) };
      }
      default:
        return c;
    }
  });
  const key = kd ? { codes: kd.codes, ...bytesOf(kd.values) } : undefined;
  enc(
    n,
    b.ts,
    key as DictBytes & { codes: Int32Array },
    key || valueOnly ? undefined : keyText(b.key),
    inputs,
    valueOnly ? undefined : tailOf(b),
    w,
  );
  return true;
}
