/**
 * Window aggregates for `kappa window --agg 'count, avg(delay) as mean, p99(delay)'`.
 *
 * Each aggregate is an accumulator with `create/add/merge/result` plus `encode/decode` to a JSON
 * value, so window state can spill to LevelDB (and, later, go into savepoints):
 * - exact: count, count(f), sum, avg, min, max, first, last (by event time; ties by arrival),
 *   count_distinct (a set of the values' JSON texts);
 * - approx_count_distinct: HyperLogLog (Flajolet et al. 2007, ./hll.ts over MurmurHash3), with
 *   1024 registers (standard error about 1.04/sqrt(1024) = 3.3%);
 * - exact quantiles with DuckDB's definitions (the window keeps every non-null value in its state,
 *   which spills to LevelDB like any other state):
 *   - quantile_cont(f, q): sorted values v[0..n-1], RN = (n-1)*q, d = RN - floor(RN);
 *     v[floor(RN)] when d = 0, else lo*(1-d) + hi*d with lo = v[floor(RN)], hi = v[ceil(RN)]
 *     (DuckDB's `Interpolator<false>`; this operation order gives DuckDB's doubles bit for bit); median(f) = quantile_cont(f, 0.5); p50/p90/p95/p99(f) are
 *     aliases of quantile_cont(f, 0.50/0.90/0.95/0.99);
 *   - quantile_disc(f, q): v[max(1, n - floor(n - n*q)) - 1], computed with exact decimal
 *     arithmetic on q as written (DuckDB's `Interpolator<true>` for a DECIMAL literal): the
 *     smallest value whose cumulative share is at least q (SQL's PERCENTILE_DISC); quantile(f, q)
 *     is its alias, as in DuckDB;
 * - approx_quantile(f, q): t-digest (Dunning and Ertl, "Computing extremely accurate quantiles
 *   using t-digests", 2019) from the `tdigest` package (compression delta 0.01), interpolated
 *   between centroids. Approximate: the result's rank in the window is within
 *   APPROX_QUANTILE_RANK_ERROR * n + APPROX_QUANTILE_RANK_SLACK of q * n (see `approxRankBound`);
 *   bounded memory per window (at most about 2500 centroids).
 * Null or missing inputs are ignored, as in SQL; a non-number where a number is needed makes the
 * record bad (BadRecordError) before any aggregate is changed.
 */
import { createRequire } from 'node:module';
import type { TDigest } from 'tdigest';
import { UsageError } from '../../errors.js';
import type { FieldType, Schema } from '../../stream/protocol.js';
import { toStateKey } from '../keys.js';
import { BadRecordError } from '../operator.js';
import { compilePath, type Getter } from '../path.js';
import { HyperLogLog } from './hll.js';

let tdigest: typeof TDigest | undefined;

/**
 * The `tdigest` package's TDigest class, required (CommonJS, synchronously) on the first quantile
 * aggregate: a window without one does not load it (about 5 ms of start-up CPU).
 */
function tdigestClass(): typeof TDigest {
  tdigest ??= (createRequire(import.meta.url)('tdigest') as typeof import('tdigest')).TDigest;
  return tdigest;
}

/**
 * Documented error bound of approx_quantile: with x the result and n the window's count,
 * #(values < x) <= q*n + e*n + s and #(values <= x) >= q*n - e*n - s, with e = this value and
 * s = APPROX_QUANTILE_RANK_SLACK. t-digest gives no worst-case guarantee: this is the bound
 * measured against DuckDB's exact ranks on the 3M flights per origin and hour at q = 0.1, 0.5, 0.9,
 * 0.99 (largest error seen: 1% of n plus 2.83 values, in windows of a few dozen values, where
 * interpolation between centroids of tied values dominates), and asserted by
 * test/e2e/window-quantiles.test.ts.
 */
export const APPROX_QUANTILE_RANK_ERROR = 0.01;

/** The constant part of the approx_quantile rank bound, in values (see APPROX_QUANTILE_RANK_ERROR). */
export const APPROX_QUANTILE_RANK_SLACK = 3;

/** HyperLogLog register count (a power of two). */
export const HLL_REGISTERS = 1024;

/** A parsed `--agg` item. */
export interface AggSpec {
  fn: string;
  field?: string;
  /** Quantile level in [0,1] for the quantile functions. */
  q?: number;
  /** The level as written (e.g. `0.9`), for exact decimal arithmetic in quantile_disc. */
  qText?: string;
  /** Output field name (`as NAME`, or derived, e.g. `avg_delay`). */
  name: string;
}

/** One aggregate function over a window's records. `A` is the accumulator. */
export interface Aggregator<A = unknown> {
  readonly spec: AggSpec;
  /** Reads the input value from a record's value (undefined for `count`). */
  readonly get: Getter | undefined;
  /** Whether the input must be a number. */
  readonly numeric: boolean;
  create(): A;
  /** Adds one non-null input value observed at event time `ts` (ms); returns the accumulator. */
  add(acc: A, v: unknown, ts: number): A;
  /** Combines two accumulators (session windows merging). */
  merge(a: A, b: A): A;
  result(acc: A): unknown;
  encode(acc: A): unknown;
  decode(j: unknown): A;
  /**
   * Type of the result column, given the input schema (if known); undefined when it depends on
   * values the schema does not type (the column is then left undeclared: a sink infers it).
   */
  type(schema: Schema | undefined): FieldType | undefined;
}

const FUNCS = [
  'count',
  'sum',
  'avg',
  'min',
  'max',
  'first',
  'last',
  'count_distinct',
  'approx_count_distinct',
  'median',
  'quantile_cont',
  'quantile_disc',
  'quantile',
  'approx_quantile',
  'p50',
  'p90',
  'p95',
  'p99',
];

/** Splits on commas outside parentheses. */
function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * Parses an `--agg` list, e.g. `count, avg(delay), max(delay) as worst, quantile(delay, 0.9)`.
 * @throws UsageError naming the bad item
 */
export function parseAggs(text: string): AggSpec[] {
  const items = splitTop(text);
  if (items.length === 0) throw new UsageError('--agg: empty list', "e.g. --agg 'count, avg(delay)'");
  const specs = items.map((item) => {
    const m =
      /^([A-Za-z_]\w*)\s*(?:\(\s*([^,()]*?)\s*(?:,\s*([0-9]*\.?[0-9]+)\s*)?\))?(?:\s+as\s+([A-Za-z_][\w]*))?$/i.exec(
        item,
      );
    const bad = (why: string) =>
      new UsageError(
        `--agg '${item}': ${why}`,
        `functions: ${FUNCS.join(', ')}; write f(field) [as name], quantile(field, 0.9)`,
      );
    if (!m) throw bad('not an aggregate');
    const fn = m[1].toLowerCase();
    const field = m[2] === undefined || m[2] === '' ? undefined : m[2];
    if (!FUNCS.includes(fn)) throw bad(`unknown function '${m[1]}'`);
    if (fn !== 'count' && field === undefined) throw bad(`${fn} needs a field, e.g. ${fn}(delay)`);
    let q: number | undefined;
    let qText: string | undefined;
    if (LEVELLED.has(fn)) {
      if (m[3] === undefined) throw bad(`${fn} needs a level, e.g. ${fn}(delay, 0.9)`);
      qText = m[3];
      q = Number(qText);
      if (!(q >= 0 && q <= 1)) throw bad('the quantile level must be between 0 and 1');
    } else if (m[3] !== undefined) throw bad(`${fn} takes one argument`);
    if (/^p\d\d$/.test(fn)) qText = `0.${fn.slice(1)}`;
    if (fn === 'median') qText = '0.5';
    if (qText !== undefined) q = Number(qText);
    const f = field?.replace(/\./g, '_');
    const derived =
      fn === 'count' && !field
        ? 'count'
        : LEVELLED.has(fn)
          ? `${fn}_${f}_${String(Math.round(q! * 1000) / 10).replace('.', '_')}`
          : `${fn}_${f}`;
    return { fn, field, q, qText, name: m[4] ?? derived };
  });
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.name))
      throw new UsageError(`--agg: two aggregates are named '${s.name}'`, "name one with 'as NAME'");
    seen.add(s.name);
  }
  return specs;
}

/** Functions that take a quantile level as second argument. */
const LEVELLED = new Set(['quantile_cont', 'quantile_disc', 'quantile', 'approx_quantile']);

/**
 * DuckDB's continuous quantile of sorted values (`Interpolator<false>`): RN = (n-1)*q, linear
 * interpolation lo*(1-d) + hi*d between the neighbours of RN (the order of operations DuckDB 1.5
 * rounds with; checked bit for bit in test/unit/window.test.ts). `sorted` must be non-empty and
 * ascending.
 */
export function quantileCont(sorted: ArrayLike<number>, q: number): number {
  const rn = (sorted.length - 1) * q;
  const frn = Math.floor(rn);
  const crn = Math.ceil(rn);
  const lo = sorted[frn];
  if (frn === crn) return lo;
  const hi = sorted[crn];
  const d = rn - frn;
  return lo * (1 - d) + hi * d;
}

/**
 * DuckDB's discrete quantile index (`Interpolator<true>::Index` for a DECIMAL level, i.e. a
 * literal such as 0.9): max(1, n - floor(n - n*q)) - 1, with q = integral / 10^scale exactly.
 * @param qText the level as written, e.g. `0.9` or `1`
 */
export function quantileDiscIndex(n: number, qText: string): number {
  const [whole, frac = ''] = qText.split('.');
  const scaling = 10n ** BigInt(frac.length);
  const integral = BigInt(whole === '' ? '0' : whole) * scaling + BigInt(frac === '' ? '0' : frac);
  const bn = BigInt(n);
  const floored = (bn * scaling - bn * integral) / scaling; // non-negative: floor
  const idx = bn - floored;
  return Number(idx < 1n ? 1n : idx) - 1;
}

/**
 * The approx_quantile error bound for a window of `n` values: the result's rank may differ from
 * q*n by at most this many values (APPROX_QUANTILE_RANK_ERROR * n + APPROX_QUANTILE_RANK_SLACK).
 */
export function approxRankBound(n: number): number {
  return APPROX_QUANTILE_RANK_ERROR * n + APPROX_QUANTILE_RANK_SLACK;
}

function cmp(a: unknown, b: unknown): number {
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/** The declared input type of an aggregate's field, or undefined (undeclared or nested). */
const fieldType = (spec: AggSpec, schema: Schema | undefined): FieldType | undefined =>
  spec.field !== undefined ? schema?.[spec.field] : undefined;

const TIME_TYPES = new Set<FieldType | undefined>(['timestamp', 'timestamptz']);

/** Builds the accumulator for one spec. */
export function makeAggregator(spec: AggSpec): Aggregator {
  const get = spec.field !== undefined ? compilePath(spec.field) : undefined;
  const base = { spec, get };
  switch (spec.fn) {
    case 'count':
      return {
        ...base,
        numeric: false,
        create: () => 0,
        add: (a) => (a as number) + 1,
        merge: (a, b) => (a as number) + (b as number),
        result: (a) => a,
        encode: (a) => a,
        decode: (j) => j,
        type: () => 'int64',
      };
    case 'sum':
      return {
        ...base,
        numeric: true,
        create: () => 0,
        add: (a, v) => (a as number) + (v as number),
        merge: (a, b) => (a as number) + (b as number),
        result: (a) => a,
        encode: (a) => a,
        decode: (j) => j,
        type: (s) => (fieldType(spec, s) === 'int64' ? 'int64' : 'float64'),
      };
    case 'avg':
      return {
        ...base,
        numeric: true,
        create: () => [0, 0],
        add: (a, v) => {
          const x = a as [number, number];
          x[0] += v as number;
          x[1]++;
          return x;
        },
        merge: (a, b) => {
          const x = a as [number, number];
          const y = b as [number, number];
          return [x[0] + y[0], x[1] + y[1]];
        },
        result: (a) => {
          const x = a as [number, number];
          return x[1] === 0 ? null : x[0] / x[1];
        },
        encode: (a) => a,
        decode: (j) => j,
        type: () => 'float64',
      };
    case 'min':
    case 'max': {
      const sign = spec.fn === 'min' ? -1 : 1;
      const better = (a: unknown, v: unknown) => a === null || cmp(v, a) * sign > 0;
      return {
        ...base,
        numeric: false,
        create: () => null,
        add: (a, v) => (better(a, v) ? v : a),
        merge: (a, b) => (b !== null && better(a, b) ? b : a),
        result: (a) => a,
        encode: (a) => a,
        decode: (j) => j,
        type: (s) => fieldType(spec, s),
      };
    }
    case 'first':
    case 'last': {
      const first = spec.fn === 'first';
      // acc: [ts, value] or null. first: smallest ts wins, ties keep the earlier arrival;
      // last: largest ts wins, ties take the later arrival.
      const wins = (a: [number, unknown] | null, ts: number) =>
        a === null || (first ? ts < a[0] : ts >= a[0]);
      return {
        ...base,
        numeric: false,
        create: () => null,
        add: (a, v, ts) => (wins(a as [number, unknown] | null, ts) ? [ts, v] : a),
        merge: (a, b) =>
          b === null ? a : wins(a as [number, unknown] | null, (b as [number, unknown])[0]) ? b : a,
        result: (a) => (a === null ? null : (a as [number, unknown])[1]),
        encode: (a) => a,
        decode: (j) => j,
        type: (s) => fieldType(spec, s),
      };
    }
    case 'count_distinct':
      return {
        ...base,
        numeric: false,
        create: () => new Set<string>(),
        add: (a, v) => (a as Set<string>).add(toStateKey(v)),
        merge: (a, b) => {
          for (const x of b as Set<string>) (a as Set<string>).add(x);
          return a;
        },
        result: (a) => (a as Set<string>).size,
        encode: (a) => [...(a as Set<string>)],
        decode: (j) => new Set(j as string[]),
        type: () => 'int64',
      };
    case 'approx_count_distinct':
      return {
        ...base,
        numeric: false,
        create: () => new HyperLogLog(HLL_REGISTERS),
        add: (a, v) => {
          (a as HyperLogLog).add(toStateKey(v));
          return a;
        },
        merge: (a, b) => (a as HyperLogLog).merge(b as HyperLogLog),
        result: (a) => (a as HyperLogLog).count(),
        encode: (a) => (a as HyperLogLog).toBase64(),
        decode: (j) => HyperLogLog.fromBase64(HLL_REGISTERS, j as string),
        type: () => 'int64',
      };
    case 'median':
    case 'quantile_cont':
    case 'p50':
    case 'p90':
    case 'p95':
    case 'p99':
    case 'quantile_disc':
    case 'quantile': {
      // Exact: every value of the window, sorted when the result is asked for.
      const disc = spec.fn === 'quantile_disc' || spec.fn === 'quantile';
      const q = spec.q!;
      const qText = spec.qText!;
      // Timestamps (epoch ms) interpolate to whole milliseconds, truncated, as DuckDB truncates
      // its microseconds.
      let whole = false;
      return {
        ...base,
        numeric: true,
        create: () => [] as number[],
        add: (a, v) => {
          (a as number[]).push(v as number);
          return a;
        },
        merge: (a, b) => {
          const x = a as number[];
          for (const v of b as number[]) x.push(v);
          return x;
        },
        result: (a) => {
          const x = a as number[];
          if (x.length === 0) return null;
          const sorted = Float64Array.from(x).sort();
          if (disc) return sorted[quantileDiscIndex(sorted.length, qText)];
          const v = quantileCont(sorted, q);
          return whole ? Math.trunc(v) : v;
        },
        encode: (a) => a,
        decode: (j) => j as number[],
        type: (s) => {
          const t = fieldType(spec, s);
          whole = TIME_TYPES.has(t);
          if (disc || whole) return t;
          return 'float64';
        },
      };
    }
    case 'approx_quantile': {
      const q = spec.q!;
      const TD = tdigestClass();
      return {
        ...base,
        numeric: true,
        create: () => new TD(),
        add: (a, v) => {
          (a as TDigest).push(v as number);
          return a;
        },
        merge: (a, b) => {
          (a as TDigest).push_centroid((b as TDigest).toArray());
          return a;
        },
        result: (a) => ((a as TDigest).size() === 0 ? null : (a as TDigest).percentile(q)),
        encode: (a) => (a as TDigest).toArray().flatMap((c) => [c.mean, c.n]),
        decode: (j) => {
          const t = new TD();
          const f = j as number[];
          for (let i = 0; i < f.length; i += 2) t.push_centroid({ mean: f[i], n: f[i + 1] });
          return t;
        },
        type: () => 'float64',
      };
    }
    default:
      throw new UsageError(`--agg: unknown function '${spec.fn}'`);
  }
}

/**
 * Reads every aggregate's input from a record value into `into` (reused per record). Throws
 * BadRecordError when a numeric aggregate gets a non-number, so a bad record changes nothing.
 */
export function readInputs(aggs: Aggregator[], value: unknown, into: unknown[]): void {
  for (let i = 0; i < aggs.length; i++) {
    const g = aggs[i];
    if (g.get === undefined) {
      into[i] = true;
      continue;
    }
    const v = g.get(value);
    if (v === undefined || v === null) into[i] = null;
    else if (g.numeric && typeof v !== 'number')
      throw new BadRecordError(`${g.spec.fn}(${g.spec.field}): ${JSON.stringify(v)} is not a number`);
    else into[i] = v;
  }
}
