/**
 * Output-equality checks for the benchmark: every tool's output is turned into canonical text lines
 * and compared as a sorted multiset, so row order, JSON key order, spacing, number formatting
 * (`33` vs `33.0`, float noise past 10 significant digits) and timestamp spelling (ISO text, DuckDB's
 * `2001-01-01 00:01:00`, epoch ms) do not matter, but a missing, extra or wrong row does.
 *
 * kappa's output is a kappa stream (header, records `{ts,key,value,…}`, watermarks, end): records are
 * unwrapped to their `value` (plus `key`/`ts` where a check needs them); control lines are dropped.
 */
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** How to read a tool's output for the equality check. */
export type Normalizer =
  | {
      /** Rows as JSON objects (NDJSON file or a directory of them, or a kappa stream). */
      kind: 'records';
      /** Fields compared, in this order (missing -> null); default: all fields, sorted by name. */
      fields?: string[];
      /** Fields holding timestamps: compared as epoch ms. */
      timeFields?: string[];
    }
  | {
      /** Window aggregates: one row per (key, window) with count, avg and max of one field. */
      kind: 'windows';
      /** Name of the key field in rows that carry it by name (e.g. mlr's `origin`). */
      keyField: string;
      /** Window size in ms (to derive the window start from a record's `ts` when no field has it). */
      sizeMs: number;
      /** Further fields compared as they are, after the aggregates (e.g. a table's `dt` partition). */
      extraFields?: string[];
    };

/** A tool's canonical output: sorted lines. */
export interface Canonical {
  lines: string[];
}

/** Result of comparing two canonical outputs. */
export interface Comparison {
  equal: boolean;
  /** Human-readable summary: "equal (N rows)" or what differs, with one example line each side. */
  summary: string;
}

/** Lists the data files under a path (a file, or a directory walked recursively; hides `_`/`.` names). */
export function dataFiles(path: string): string[] {
  const st = statSync(path);
  if (!st.isDirectory()) return [path];
  const out: string[] = [];
  for (const name of readdirSync(path).sort()) {
    if (name.startsWith('_') || name.startsWith('.')) continue;
    out.push(...dataFiles(join(path, name)));
  }
  return out;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

/** Normalises a number: integers as they are, floats to 10 significant digits. */
export function normNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toPrecision(10)));
}

/**
 * Timestamp -> epoch ms: numbers are taken as epoch ms; text as ISO-8601 or DuckDB's
 * `YYYY-MM-DD HH:MM:SS[.fff][+HH[:MM]]` (zone-less = UTC). Unparseable text is returned as it is.
 */
export function normTime(v: Json): Json {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return v;
  let s = v.trim().replace(' ', 'T');
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) s += 'T00:00:00';
  // an hour-only offset (DuckDB's TIMESTAMPTZ as JSON: `2001-01-01 00:01:00+00`)
  if (/T[\d:.]+[+-]\d{2}$/.test(s)) s += ':00';
  if (!/(Z|[+-]\d{2}:?\d{2})$/.test(s)) s += 'Z';
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? v : ms;
}

function canonValue(v: Json | undefined): string {
  if (v === undefined || v === null) return 'null';
  if (typeof v === 'number') return normNumber(v);
  if (typeof v === 'string') {
    // numbers written as text (CSV-ish tools) compare equal to numbers
    if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(v)) return normNumber(Number(v));
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonValue).join(',')}]`;
  if (typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonValue(v[k])}`)
      .join(',')}}`;
  }
  return String(v);
}

/** A parsed output row: the payload object plus the kappa record's key and ts when it was one. */
interface Row {
  obj: Obj;
  key?: Json;
  ts?: number;
}

/** Parses one output line into a row, unwrapping kappa stream records; null for control lines. */
export function parseRow(line: string): Row | null {
  if (line.length === 0) return null;
  const o = JSON.parse(line) as Json;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return { obj: { value: o } };
  if ('kappa' in o || 'watermark' in o || 'barrier' in o || 'end' in o) return null;
  if ('value' in o && 'ts' in o && typeof o.ts === 'number') {
    let value = o.value;
    if (typeof value === 'string' && value.startsWith('{')) {
      try {
        value = JSON.parse(value) as Json;
      } catch {
        // keep the text
      }
    }
    const obj = value !== null && typeof value === 'object' && !Array.isArray(value) ? value : { value };
    return { obj, key: o.key, ts: o.ts };
  }
  return { obj: o };
}

function findField(o: Obj, re: RegExp): Json | undefined {
  for (const k of Object.keys(o)) if (re.test(k)) return o[k];
  return undefined;
}

/** One row -> canonical line, or null to skip. */
export function canonRow(row: Row, n: Normalizer): string {
  const o = row.obj;
  if (n.kind === 'records') {
    const fields = n.fields ?? Object.keys(o).sort();
    const time = new Set(n.timeFields ?? []);
    return fields.map((f) => canonValue(time.has(f) ? normTime(o[f] ?? null) : o[f])).join('|');
  }
  // windows
  const win = o.window;
  const winObj = win !== null && typeof win === 'object' && !Array.isArray(win) ? win : {};
  const key = o[n.keyField] ?? o.key ?? row.key ?? null;
  let start: Json | undefined =
    o.window_start ?? o.windowStart ?? o.start ?? winObj.start ?? o.window_start_ms ?? undefined;
  if (start === undefined) {
    const end = o.window_end ?? o.windowEnd ?? o.end ?? winObj.end;
    if (end !== undefined && end !== null) {
      const e = normTime(end);
      start = typeof e === 'number' ? e - n.sizeMs : null;
    } else if (row.ts !== undefined) {
      start = Math.floor(row.ts / n.sizeMs) * n.sizeMs;
    }
  }
  const count = o.count ?? findField(o, /(^|_)count(_|$)|^cnt$/i);
  const avg = findField(o, /(^|_)(avg|mean)(_|$|\()/i);
  const max = findField(o, /(^|_)max(_|$|\()/i);
  return [
    canonValue(key),
    canonValue(normTime(start ?? null)),
    canonValue(count),
    canonValue(avg),
    canonValue(max),
    ...(n.extraFields ?? []).map((f) => canonValue(o[f])),
  ].join('|');
}

/** Reads an output (file or directory of NDJSON files) into its canonical sorted lines. */
export async function canonicalize(path: string, n: Normalizer): Promise<Canonical> {
  const lines: string[] = [];
  for (const file of dataFiles(path)) {
    const rl = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
    let lineNo = 0;
    for await (const line of rl) {
      lineNo++;
      let row: Row | null;
      try {
        row = parseRow(line);
      } catch {
        throw new Error(`${file}:${lineNo}: not JSON: ${line.slice(0, 120)}`);
      }
      if (row) lines.push(canonRow(row, n));
    }
  }
  lines.sort();
  return { lines };
}

/** Compares two canonical outputs as multisets (both are sorted). */
export function compare(a: Canonical, b: Canonical, aName: string, bName: string): Comparison {
  const x = a.lines;
  const y = b.lines;
  let i = 0;
  let j = 0;
  let onlyA = 0;
  let onlyB = 0;
  let exA: string | undefined;
  let exB: string | undefined;
  while (i < x.length || j < y.length) {
    if (j >= y.length || (i < x.length && x[i]! < y[j]!)) {
      onlyA++;
      exA ??= x[i];
      i++;
    } else if (i >= x.length || y[j]! < x[i]!) {
      onlyB++;
      exB ??= y[j];
      j++;
    } else {
      i++;
      j++;
    }
  }
  if (onlyA === 0 && onlyB === 0) return { equal: true, summary: `equal (${x.length} rows)` };
  const parts = [`differs: ${aName} ${x.length} rows, ${bName} ${y.length} rows`];
  if (onlyA > 0) parts.push(`${onlyA} only in ${aName}, e.g. \`${exA}\``);
  if (onlyB > 0) parts.push(`${onlyB} only in ${bName}, e.g. \`${exB}\``);
  return { equal: false, summary: parts.join('; ') };
}
