/**
 * The columnar branch of the source runtime (source.ts; issue 14): a batch that a reader delivered
 * column-wise (`RowBatch.columns`, Parquet) becomes a `RecordBatch` with event time and key
 * assigned from columns, without one row object per record, when the output is the binary stream.
 *
 * It applies only where it gives exactly what the row path gives: `--ts-field` and `--key-field`
 * name top-level fields (no dotted paths), the batch has no native time, key, provenance or headers
 * (Kafka), and every row's event time is valid. Without `--ts-field` event time is the ingestion
 * time: one `Date.now()` for the whole batch (the row path reads the clock per row; both are "when
 * the source read it", a batch is read within milliseconds). Otherwise `undefined`: the runtime takes the row
 * path, which reports each bad row with its location.
 */
import type { RowBatch } from '../formats/format.js';
import { toRecordKey } from '../ops/keys.js';
import { isoFastPath, MAX_TS_MS, type TsFormat, timestampParser } from '../time/timestamp.js';
import {
  ArrayColumn,
  type Column,
  DictionaryColumn,
  nullColumn,
  type RecordBatch,
  type ValueColumns,
} from './batch.js';

/** What the columnar branch needs from the source spec. */
export interface ColumnarAssignSpec {
  tsField?: string;
  /** The `--ts-format` after `typedTsFormat` (a typed Parquet timestamp column read as such). */
  tsFormat: TsFormat;
  tz: string;
  keyField?: string;
}

const PLAIN = /^[^.[\]]+$/;

/**
 * Builds the per-batch converter, or undefined when no batch can take the columnar branch (a
 * dotted path).
 * @returns a function giving the batch's records as a RecordBatch, or undefined for the row path
 */
export function columnarAssigner(
  spec: ColumnarAssignSpec,
): ((b: RowBatch) => RecordBatch | undefined) | undefined {
  const { tsField, keyField } = spec;
  if ((tsField !== undefined && !PLAIN.test(tsField)) || (keyField !== undefined && !PLAIN.test(keyField)))
    return undefined;
  const parse = timestampParser(spec.tsFormat, spec.tz);
  // Formats under which timestampParser gives an integer epoch-ms number back unchanged.
  const utc = spec.tz === 'UTC' || spec.tz === 'utc' || spec.tz === 'Z';
  const msAsIs =
    spec.tsFormat === 'epoch-ms' || (spec.tsFormat === 'wallclock-ms' && (utc || spec.tz === undefined));
  const cache = new TimeCache(TIME_CACHE_ENTRIES);
  // Under `auto` and `iso` the parser's first step on a text is `isoFastPath` (timestamp.ts): a
  // text of that exact shape is read arithmetically here, without the cache (a lookup costs more
  // than that read; 3M flights miss the cache 240k times).
  const isoFirst = spec.tsFormat === 'auto' || spec.tsFormat === 'iso';
  const isoUtc = spec.tz === undefined || utc;
  const keyCol = (cols: ValueColumns) => (keyField === undefined ? undefined : cols.column(keyField));
  return (b) => {
    const cols = b.columns;
    if (!cols || b.nativeTs || b.nativeKey || b.prov || b.headers || b.errors?.size) return undefined;
    if (tsField === undefined) {
      const key = keyColumn(keyField === undefined ? undefined : cols.column(keyField), cols.length);
      return withTimeAndKey(cols, new Float64Array(cols.length).fill(Date.now()), key);
    }
    const tsCol = cols.column(tsField);
    if (!tsCol) return undefined;
    const n = cols.length;
    const f = tsCol.float64();
    if (f && msAsIs && tsCol.typed && INTEGER_TYPES.has(tsCol.type)) {
      // Integer epoch ms read as such (a typed timestamp column, or int64 with --ts-format
      // epoch-ms): the parser is the identity on them, so event time is the column's own array
      // once every value is within range (NaN, a null, fails the comparison).
      for (let i = 0; i < n; i++) {
        const t = f[i];
        if (!(t >= -MAX_TS_MS && t <= MAX_TS_MS)) return undefined;
      }
      return withTimeAndKey(cols, f.length === n ? f : f.subarray(0, n), keyColumn(keyCol(cols), n));
    }
    const ts = new Float64Array(n);
    const d = f || !tsCol.typed ? undefined : tsCol.dictionary();
    if (d) {
      // A dictionary-coded time column (NDJSON, CSV, Parquet strings): each distinct text parsed
      // once, and a text seen in a recent batch not again (TimeCache).
      const byCode = new Float64Array(d.values.length).fill(Number.NaN);
      for (let i = 0; i < n; i++) {
        const c = d.codes[i];
        if (c < 0) return undefined;
        let t = byCode[c];
        if (Number.isNaN(t)) {
          const text = d.values[c];
          t = isoFirst ? isoFastPath(text, isoUtc) : Number.NaN;
          if (Number.isNaN(t)) {
            let p = cache.get(text);
            if (p === undefined) {
              p = parse(text);
              if (p === undefined) return undefined;
              cache.set(text, p);
            }
            t = p;
          }
          byCode[c] = t;
        }
        ts[i] = t;
      }
    } else
      for (let i = 0; i < n; i++) {
        // (timestampParser memoises the last text: consecutive rows often carry the same time.)
        const raw = f ? (Number.isNaN(f[i]) ? null : f[i]) : tsCol.get(i);
        if (raw === null) return undefined;
        const t = parse(raw);
        if (t === undefined) return undefined;
        ts[i] = t;
      }
    return withTimeAndKey(cols, ts, keyColumn(keyField === undefined ? undefined : cols.column(keyField), n));
  };
}

/** Entries of a time cache's generation: the cache holds at most twice as many texts. */
const TIME_CACHE_ENTRIES = 16_384;

/**
 * A bounded cache of parsed time texts (text -> epoch ms) that outlives a batch: texts that recur
 * across batches (an hourly or daily time, a file not sorted by time) are parsed once, and a zone
 * other than UTC or an offset costs a luxon parse (microseconds) each time. Two generations of at
 * most `limit` entries each: when the current one is full it becomes the old one and the oldest is
 * dropped; a hit in the old one moves the text to the current one (an approximate LRU, bounded at
 * `2 * limit` entries, ~1.5 MB at 16,384 for 24-character texts).
 */
export class TimeCache {
  private current = new Map<string, number>();
  private old = new Map<string, number>();
  constructor(private readonly limit: number) {}

  /** Epoch ms of `text`, or undefined when it is not cached. */
  get(text: string): number | undefined {
    const t = this.current.get(text);
    if (t !== undefined) return t;
    const o = this.old.get(text);
    if (o !== undefined) this.set(text, o);
    return o;
  }

  /** Caches `text` -> `ms`. */
  set(text: string, ms: number): void {
    if (this.current.size >= this.limit) {
      this.old = this.current;
      this.current = new Map();
    }
    this.current.set(text, ms);
  }

  /** Number of cached texts (both generations; a text may be in both). */
  get size(): number {
    return this.current.size + this.old.size;
  }
}

/** Column types whose `float64()` values are integers. */
const INTEGER_TYPES: ReadonlySet<string> = new Set(['int64', 'timestamp', 'timestamptz']);

/** The record keys of `--key-field`'s column (toRecordKey of each value; null without the column). */
function keyColumn(col: Column | undefined, n: number): Column {
  if (!col) return nullColumn('string', n);
  const d = col.typed ? col.dictionary() : undefined;
  if (d) return new DictionaryColumn(d.codes, d.values);
  const keys = new Array<string | null>(n);
  for (let i = 0; i < n; i++) keys[i] = toRecordKey(col.get(i));
  return new ArrayColumn('string', keys);
}

/**
 * A RecordBatch over value columns with event time and key added.
 * @param ts event time of each row, integer epoch ms
 * @param key the record key column (type string)
 */
export function withTimeAndKey(cols: ValueColumns, ts: Float64Array, key: Column): RecordBatch {
  return {
    length: cols.length,
    ts,
    key,
    fields: cols.fields,
    column: (name) => cols.column(name),
    value: (i) => cols.value(i),
    complete: cols.complete,
  };
}

/** Largest value of `ts` (-Infinity when empty): the watermark observes the batch's maximum. */
export function maxTs(ts: Float64Array): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < ts.length; i++) if (ts[i] > m) m = ts[i];
  return m;
}
