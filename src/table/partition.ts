/**
 * Hive-style partition layout: `--partition-by 'dt=%Y-%m-%d/hr=%H'` (from event time) and
 * `{field}` / `name={field}` segments (from record fields).
 *
 * A spec is a `/`-separated list of segments, each `name=PATTERN` (PATTERN a strftime pattern
 * applied to the record's event time in `--tz`, UTC by default), `{field}` (short for
 * `field={field}`) or `name={field}` (a top-level value field). Field values are escaped as Hive
 * and Spark escape partition values (`FileUtils.escapePathName`): control characters and
 * `"#%'*\/:=?\\\x7F{[]^` become `%XX`; null and the empty string become `__HIVE_DEFAULT_PARTITION__`.
 *
 * An empty-string field value is a null partition value, as Delta specifies (PROTOCOL.md,
 * "Partition Value Serialization": an empty string for any type is a null partition value) and as
 * Spark writes it (its Empty2Null on partition columns): `partitionValues` get null, and
 * `partitionOf` sets the record's field to null too, so the data file, the Delta view, the Hive
 * glob view and kappa's own table reader all read null.
 *
 * Hot path: the time part of the path is cached per time bucket (the finest unit in the pattern),
 * so 3M records cost one Map lookup each in UTC, not one date formatting each.
 */
import { DateTime } from 'luxon';
import { UsageError } from '../errors.js';
import { strftimeToLuxon } from '../time/timestamp.js';

export const HIVE_DEFAULT_PARTITION = '__HIVE_DEFAULT_PARTITION__';

/** Time units a pattern can be floored to, finest first. */
type Unit = 'second' | 'minute' | 'hour' | 'day' | 'month' | 'year';
const UNIT_MS: Partial<Record<Unit, number>> = {
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
};
const DIRECTIVE_UNIT: Record<string, Unit> = {
  S: 'second',
  s: 'second',
  f: 'second',
  L: 'second',
  M: 'minute',
  H: 'hour',
  I: 'hour',
  p: 'hour',
  d: 'day',
  e: 'day',
  j: 'day',
  a: 'day',
  A: 'day',
  m: 'month',
  b: 'month',
  h: 'month',
  B: 'month',
  Y: 'year',
  y: 'year',
};
const ORDER: Unit[] = ['second', 'minute', 'hour', 'day', 'month', 'year'];

export type Segment =
  | {
      kind: 'time';
      column: string;
      pattern: string;
      luxon: string;
      /** The pattern as literals and UTC fields (see `utcParts`); undefined: formatted by luxon. */
      utc?: UtcPart[];
    }
  | { kind: 'field'; column: string; field: string };

export interface PartitionSpec {
  /** The flag text, e.g. `dt=%Y-%m-%d/{carrier}`. */
  text: string;
  segments: Segment[];
  /** Partition column names in path order (Delta `partitionColumns`). */
  columns: string[];
  /** Names of the columns derived from event time (not record fields). */
  timeColumns: string[];
  /** Finest time unit of all time segments, or undefined if no segment uses time. */
  unit?: Unit;
}

/**
 * Parses `--partition-by`. Throws UsageError for segments that are not `name=PATTERN`,
 * `{field}` or `name={field}`, for unknown strftime directives and for duplicate columns.
 */
export function parsePartitionSpec(text: string): PartitionSpec {
  const segments: Segment[] = [];
  let unit: Unit | undefined;
  for (const raw of text.split('/').filter((s) => s.length > 0)) {
    const bare = /^\{([^{}=/]+)\}$/.exec(raw);
    if (bare) {
      segments.push({ kind: 'field', column: bare[1], field: bare[1] });
      continue;
    }
    const eq = raw.indexOf('=');
    if (eq <= 0)
      throw new UsageError(
        `--partition-by: segment '${raw}' is not name=PATTERN, {field} or name={field}`,
        "e.g. --partition-by 'dt=%Y-%m-%d/hr=%H' or 'dt=%Y-%m-%d/{carrier}'",
      );
    const column = raw.slice(0, eq);
    const rhs = raw.slice(eq + 1);
    if (/[{}%]/.test(column) || column.startsWith('_') || column.startsWith('.'))
      throw new UsageError(`--partition-by: bad partition column name '${column}'`);
    const field = /^\{([^{}=/]+)\}$/.exec(rhs);
    if (field) {
      segments.push({ kind: 'field', column, field: field[1] });
      continue;
    }
    if (!rhs.includes('%'))
      throw new UsageError(`--partition-by: segment '${raw}' has neither a strftime directive nor a {field}`);
    for (let i = 0; i < rhs.length; i++)
      if (rhs[i] === '%' && i + 1 < rhs.length) {
        const u = DIRECTIVE_UNIT[rhs[++i]];
        if (u && (unit === undefined || ORDER.indexOf(u) < ORDER.indexOf(unit))) unit = u;
      }
    segments.push({ kind: 'time', column, pattern: rhs, luxon: strftimeToLuxon(rhs), utc: utcParts(rhs) });
  }
  if (segments.length === 0) throw new UsageError('--partition-by: empty partition spec');
  const columns = segments.map((s) => s.column);
  const dup = columns.find((c, i) => columns.indexOf(c) !== i);
  if (dup) throw new UsageError(`--partition-by: column '${dup}' appears twice`);
  const hasTime = segments.some((s) => s.kind === 'time');
  if (hasTime && unit === undefined)
    throw new UsageError(`--partition-by: '${text}' has no date or time directive (%Y, %m, %d, %H, …)`);
  return {
    text,
    segments,
    columns,
    timeColumns: segments.filter((s) => s.kind === 'time').map((s) => s.column),
    unit: hasTime ? unit : undefined,
  };
}

/** A literal, or a zero-padded UTC field of a date: year (4 digits), month, day, hour, minute, second. */
type UtcPart = string | 'Y' | 'm' | 'd' | 'H' | 'M' | 'S';
const UTC_FIELDS = new Set(['Y', 'm', 'd', 'H', 'M', 'S']);

/**
 * A strftime pattern as literal text and the numeric UTC fields `%Y %m %d %H %M %S` (`%%` a
 * literal `%`), or undefined when it uses any other directive (names, 12-hour clock, day of year,
 * …: those stay with luxon). Field i of the result is a directive letter at odd positions, a
 * literal at even ones.
 */
function utcParts(pattern: string): UtcPart[] | undefined {
  const parts: UtcPart[] = [];
  let lit = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c !== '%' || i + 1 === pattern.length) {
      lit += c;
      continue;
    }
    const d = pattern[++i];
    if (d === '%') lit += '%';
    else if (UTC_FIELDS.has(d)) {
      parts.push(lit, d as UtcPart);
      lit = '';
    } else return undefined;
  }
  parts.push(lit);
  return parts;
}

const pad2 = (v: number): string => (v < 10 ? `0${v}` : `${v}`);

/**
 * `parts` (from `utcParts`) formatted for the UTC fields of epoch ms `ms`, as luxon's
 * `toFormat` gives them in UTC (`yyyy MM dd HH mm ss`); undefined for a year outside 1000..9999
 * (luxon's padding of other years is left to luxon). No Intl: luxon asks Intl for the system
 * locale at its first format (about 15 ms of a sink's start-up).
 */
function formatUtc(parts: UtcPart[], ms: number): string | undefined {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  if (!(y >= 1000 && y <= 9999)) return undefined;
  let out = parts[0];
  for (let i = 1; i < parts.length; i += 2) {
    switch (parts[i]) {
      case 'Y':
        out += y;
        break;
      case 'm':
        out += pad2(d.getUTCMonth() + 1);
        break;
      case 'd':
        out += pad2(d.getUTCDate());
        break;
      case 'H':
        out += pad2(d.getUTCHours());
        break;
      case 'M':
        out += pad2(d.getUTCMinutes());
        break;
      default:
        out += pad2(d.getUTCSeconds());
    }
    out += parts[i + 1];
  }
  return out;
}

const ESCAPE = /[\x00-\x1F"#%'*/:=?\\\x7F{[\]^]/g;

/** Escapes a partition value for a path segment as Hive/Spark do (`a:b` -> `a%3Ab`). */
export function escapePartitionValue(v: string): string {
  if (v === '') return HIVE_DEFAULT_PARTITION;
  return v.replace(ESCAPE, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** The string form of a field value in a partition path and in Delta `partitionValues`; null for null/missing. */
export function partitionValueString(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

/** One resolved partition of a record. */
export interface PartitionOf {
  /** Relative directory, e.g. `dt=2001-01-01/carrier=AA` (no trailing slash). */
  path: string;
  /** Column -> value (null for null/missing fields), as Delta `partitionValues`. */
  values: Record<string, string | null>;
  /** End of the partition's time bucket in epoch ms (exclusive), or undefined without time segments. */
  end?: number;
}

interface TimeBucket {
  start: number;
  end: number;
  path: string;
  values: Record<string, string>;
}

/**
 * Maps records to partitions for one spec and zone. Create one per sink run; it caches time
 * buckets (bounded: cleared past 100k buckets).
 */
export class Partitioner {
  private readonly fixedMs: number | undefined;
  private readonly buckets = new Map<number, TimeBucket>();
  private last: TimeBucket | undefined;
  private readonly fieldSegs: { column: string; field: string; index: number }[];

  constructor(
    readonly spec: PartitionSpec,
    readonly tz = 'UTC',
  ) {
    // Fixed-size buckets can be found by division only in a zone without DST or offset changes.
    const ms = spec.unit ? UNIT_MS[spec.unit] : undefined;
    this.fixedMs = ms !== undefined && tz === 'UTC' ? ms : undefined;
    this.fieldSegs = spec.segments
      .map((s, index) => ({ s, index }))
      .filter((x) => x.s.kind === 'field')
      .map((x) => ({ column: x.s.column, field: (x.s as { field: string }).field, index: x.index }));
  }

  /** The time bucket [start, end) of an event time, with its formatted path segments. */
  private bucket(ts: number): TimeBucket | undefined {
    const unit = this.spec.unit;
    if (!unit) return undefined;
    const l = this.last;
    if (l && ts >= l.start && ts < l.end) return l;
    let b: TimeBucket | undefined;
    if (this.fixedMs !== undefined) {
      const start = Math.floor(ts / this.fixedMs) * this.fixedMs;
      b = this.buckets.get(start);
      if (!b) {
        b = this.makeBucket(start, start + this.fixedMs);
        if (this.buckets.size > 100_000) this.buckets.clear();
        this.buckets.set(start, b);
      }
    } else {
      const dt = DateTime.fromMillis(ts, { zone: this.tz }).startOf(unit);
      b = this.makeBucket(dt.toMillis(), dt.plus({ [`${unit}s`]: 1 }).toMillis(), dt);
    }
    this.last = b;
    return b;
  }

  /**
   * The time bucket of event time `ts` (epoch ms) as an opaque object, the same object for every
   * time in the same bucket while it stays cached (so a batch can group its rows by identity), or
   * undefined when the spec has no time segment.
   */
  timeBucketOf(ts: number): object | undefined {
    return this.bucket(ts);
  }

  /**
   * The time bucket of each of `n` event times (epoch ms) in one pass: `ids[i]` indexes `buckets`
   * (opaque objects, as `timeBucketOf` gives them), numbered in order of first appearance; outside
   * UTC a bucket met again after another may be a new object with a new id (buckets are cached
   * only for fixed-size UTC units), so callers group by the partition path. A row inside the
   * previous row's bucket costs two comparisons. Undefined when the spec has no time segment.
   */
  timeBucketIds(ts: Float64Array, n: number): { ids: Int32Array; buckets: object[] } | undefined {
    if (!this.spec.unit) return undefined;
    const ids = new Int32Array(n);
    const buckets: TimeBucket[] = [];
    const index = new Map<TimeBucket, number>();
    let cur: TimeBucket | undefined;
    let curId = -1;
    for (let i = 0; i < n; i++) {
      const t = ts[i];
      if (cur === undefined || !(t >= cur.start && t < cur.end)) {
        cur = this.bucket(t)!;
        let id = index.get(cur);
        if (id === undefined) {
          id = buckets.length;
          buckets.push(cur);
          index.set(cur, id);
        }
        curId = id;
      }
      ids[i] = curId;
    }
    return { ids, buckets };
  }

  /**
   * The bucket [start, end) (epoch ms) and its path segments: from `dt` (the start in the
   * partitioner's zone) by luxon, or, without `dt` (UTC), from the UTC fields where the pattern
   * allows (`formatUtc`), else by luxon in UTC.
   */
  private makeBucket(start: number, end: number, dt?: DateTime): TimeBucket {
    const values: Record<string, string> = {};
    const parts: string[] = [];
    for (const s of this.spec.segments) {
      if (s.kind !== 'time') continue;
      const v =
        (dt === undefined && s.utc ? formatUtc(s.utc, start) : undefined) ??
        (dt ?? DateTime.fromMillis(start, { zone: 'UTC' })).toFormat(s.luxon);
      values[s.column] = v;
      parts.push(`${s.column}=${escapePartitionValue(v)}`);
    }
    return { start, end, path: parts.join('/'), values };
  }

  /**
   * The partition of a record with event time `ts` (epoch ms) and value `value`. A partition field
   * holding the empty string is set to null in `value` (see the module comment).
   */
  partitionOf(ts: number, value: Record<string, unknown>): PartitionOf {
    const b = this.bucket(ts);
    if (this.fieldSegs.length === 0 && b) return { path: b.path, values: b.values, end: b.end };
    const values: Record<string, string | null> = {};
    const parts: string[] = [];
    for (const s of this.spec.segments) {
      if (s.kind === 'time') {
        const v = b!.values[s.column];
        values[s.column] = v;
        parts.push(`${s.column}=${escapePartitionValue(v)}`);
      } else {
        let v = partitionValueString(value[s.field]);
        if (v === '') {
          value[s.field] = null;
          v = null;
        }
        values[s.column] = v;
        parts.push(`${s.column}=${v === null ? HIVE_DEFAULT_PARTITION : escapePartitionValue(v)}`);
      }
    }
    return { path: parts.join('/'), values, end: b?.end };
  }
}
