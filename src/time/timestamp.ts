/**
 * Event-time extraction: turns a field value into integer epoch milliseconds.
 *
 * Formats (`--ts-format`): `epoch-s`, `epoch-ms`, `epoch-us`, `epoch-ns`, `iso` (ISO-8601 / RFC 3339,
 * also with a space instead of `T`), or a strftime pattern such as `%d/%m/%Y %H:%M:%S` (converted to a
 * luxon format). Zone-less times are read in `--tz` (an IANA zone, default UTC). `auto` (the default)
 * accepts Date objects (Parquet TIMESTAMP columns), ISO strings, and numbers when their magnitude makes
 * the unit unambiguous for dates between 1973 and 5138 (s < 1e11 <= ms < 1e14 <= us < 1e17 <= ns).
 *
 * Every converter returns an integer number of epoch ms within ±8.64e15 (the range of an ECMAScript
 * Date, years −271821 to 275760) or `undefined`: a date-only value (`2024-05-01`) is midnight in
 * `--tz`; an impossible calendar date (`2024-02-30`) is rejected, never rolled over; fractional epoch
 * values are floored to the millisecond that contains them.
 */
import { DateTime, Info } from 'luxon';
import { UsageError } from '../errors.js';

export type TsFormat =
  | 'auto'
  | 'epoch-s'
  | 'epoch-ms'
  | 'epoch-us'
  | 'epoch-ns'
  | 'iso'
  /** Epoch ms of a zone-less wall-clock time (Parquet TIMESTAMP with isAdjustedToUTC=false), read in `tz`. */
  | 'wallclock-ms'
  | { strftime: string };

/** Parses the `--ts-format` flag. */
export function parseTsFormat(s: string | undefined): TsFormat {
  if (s === undefined || s === 'auto') return 'auto';
  if (s === 'epoch-s' || s === 'epoch-ms' || s === 'epoch-us' || s === 'epoch-ns' || s === 'iso') return s;
  if (s.includes('%')) return { strftime: s };
  throw new UsageError(
    `--ts-format: '${s}' is not a format; use epoch-s, epoch-ms, epoch-us, epoch-ns, iso or a strftime pattern like '%Y-%m-%d %H:%M:%S'`,
  );
}

/**
 * Checks an IANA zone name (`--tz`). Validates the zone alone (luxon's `Info.normalizeZone`, the
 * same lookup `DateTime#setZone` does) rather than building a `DateTime`: a `DateTime` resolves the
 * system locale through `Intl` (about 25-30 ms of start-up), and `UTC`, the default, needs no `Intl`.
 * @throws UsageError for an unknown zone
 */
export function checkZone(tz: string): string {
  if (tz === 'UTC') return tz;
  if (!Info.normalizeZone(tz).isValid)
    throw new UsageError(`--tz: '${tz}' is not a known time zone (use an IANA name such as Europe/Berlin)`);
  return tz;
}

const STRFTIME_TO_LUXON: Record<string, string> = {
  Y: 'yyyy',
  y: 'yy',
  m: 'MM',
  d: 'dd',
  e: 'd',
  H: 'HH',
  I: 'hh',
  M: 'mm',
  S: 'ss',
  f: 'SSS',
  L: 'SSS',
  p: 'a',
  b: 'LLL',
  h: 'LLL',
  B: 'LLLL',
  a: 'ccc',
  A: 'cccc',
  j: 'ooo',
  z: 'ZZZ',
  Z: 'z',
  s: 'X',
  '%': "'%'",
};

/** Converts a strftime pattern to a luxon format string; literal text is quoted. */
export function strftimeToLuxon(pattern: string): string {
  let out = '';
  let lit = '';
  const flush = () => {
    if (lit) out += `'${lit.replace(/'/g, "''")}'`;
    lit = '';
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '%' && i + 1 < pattern.length) {
      const tok = STRFTIME_TO_LUXON[pattern[++i]];
      if (tok === undefined)
        throw new UsageError(`unsupported strftime directive %${pattern[i]} in '${pattern}'`);
      flush();
      out += tok;
    } else lit += c;
  }
  flush();
  return out;
}

/** Largest |epoch ms| a Date can hold (ECMA-262 §21.4.1.1): 100,000,000 days. */
export const MAX_TS_MS = 8.64e15;

/** An integer epoch-ms value within ±`MAX_TS_MS`, or undefined. */
function inRange(t: number | undefined): number | undefined {
  return t !== undefined && Number.isInteger(t) && t >= -MAX_TS_MS && t <= MAX_TS_MS ? t : undefined;
}

/** A zone designator after the time of day (`Z`, `+01`, `-0130`, `+01:30`); never the `-01` of a date. */
const ZONE_AFTER_TIME = /\d(Z|[+-]\d\d(:?\d\d)?)$/i;
/** True when an ISO text carries its own zone: only the part after `YYYY-MM-DD` and the `T` counts. */
const hasZone = (s: string): boolean => s.length > 11 && ZONE_AFTER_TIME.test(s.slice(11));
const YMD = /^(\d{4})-(\d\d)-(\d\d)/;

/**
 * True when `s` starts with a `YYYY-MM-DD` that is not a calendar date (month 13, 30 February).
 * `Date.parse` rolls such dates over into the next month; luxon rejects them, and so do we.
 */
function impossibleDate(s: string): boolean {
  const m = YMD.exec(s);
  if (!m) return false;
  const y = +m[1];
  const mo = +m[2];
  const d = +m[3];
  if (mo < 1 || mo > 12 || d < 1) return true;
  const dim =
    mo === 2
      ? y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)
        ? 29
        : 28
      : [4, 6, 9, 11].includes(mo)
        ? 30
        : 31;
  return d > dim;
}

/** Milliseconds per day. */
const DAY_MS = 86_400_000;

/** Two ASCII digits of `s` at `i` as a number, or -1 when either is not a digit. */
function two(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/**
 * Epoch ms of the common exact ISO-8601 shapes `YYYY-MM-DDTHH:MM:SS(.sss)?Z` (also with a space for
 * `T`; without the `Z` when `utc`, a zone-less text read in UTC), computed arithmetically: days from
 * the civil date (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms", `days_from_civil`,
 * https://howardhinnant.github.io/date_algorithms.html#days_from_civil) times 86,400,000 plus the
 * time of day. It gives what `Date.parse` gives on these texts, without building a Date or running a
 * regular expression (ingest parses each distinct time text of a batch once; 3M flights have ~240k).
 * @returns integer epoch ms, or NaN when `s` is not one of these shapes or a field is out of range
 *   (month 13, 30 February, hour 24, second 60): the caller then takes the general path, which
 *   decides about those texts.
 */
export function isoFastPath(s: string, utc: boolean): number {
  const n = s.length;
  let zoned: boolean;
  if (n === 20 || n === 24) zoned = true;
  else if ((n === 19 || n === 23) && utc) zoned = false;
  else return Number.NaN;
  if (zoned && s.charCodeAt(n - 1) !== 90) return Number.NaN; // Z
  const sep = s.charCodeAt(10);
  if (
    s.charCodeAt(4) !== 45 ||
    s.charCodeAt(7) !== 45 ||
    (sep !== 84 && sep !== 32) ||
    s.charCodeAt(13) !== 58 ||
    s.charCodeAt(16) !== 58
  )
    return Number.NaN;
  const c = two(s, 0);
  const yy = two(s, 2);
  const mo = two(s, 5);
  const d = two(s, 8);
  const h = two(s, 11);
  const mi = two(s, 14);
  const sec = two(s, 17);
  if (c < 0 || yy < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59)
    return Number.NaN;
  if (sec < 0 || sec > 59) return Number.NaN;
  const y = c * 100 + yy;
  const dim = mo === 2 ? (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28) : DAYS_IN_MONTH[mo];
  if (d > dim) return Number.NaN;
  let frac = 0;
  if (n === 23 || n === 24) {
    if (s.charCodeAt(19) !== 46) return Number.NaN; // .
    const f1 = s.charCodeAt(20) - 48;
    const f2 = two(s, 21);
    if (f1 < 0 || f1 > 9 || f2 < 0) return Number.NaN;
    frac = f1 * 100 + f2;
  }
  // days_from_civil: the year starts in March, so February's leap day is the year's last day.
  const ya = mo <= 2 ? y - 1 : y;
  const era = Math.floor(ya / 400);
  const yoe = ya - era * 400;
  const doy = Math.floor((153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  const days = era * 146097 + doe - 719468;
  return days * DAY_MS + h * 3_600_000 + mi * 60_000 + sec * 1000 + frac;
}

/** Days of each month in a common year (index 1–12). */
const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Builds a converter from field values to epoch ms for one format and zone. The converter returns
 * `undefined` for a missing or unparsable value (the caller reports a bad record).
 */
export function timestampParser(format: TsFormat, tz = 'UTC'): (v: unknown) => number | undefined {
  const parse = timestampParserUnchecked(format, tz);
  return (v) => inRange(parse(v));
}

function timestampParserUnchecked(format: TsFormat, tz: string): (v: unknown) => number | undefined {
  const utc = tz === 'UTC' || tz === 'utc' || tz === 'Z';
  // One-entry memo: consecutive records often carry the same timestamp text (same second or
  // minute), and parsing it is a sixth of ingest's CPU time.
  let lastText: string | undefined;
  let lastMs: number | undefined;
  const parseIso = (s: string): number | undefined => {
    if (s === lastText) return lastMs;
    lastMs = parseIsoUncached(s);
    lastText = s;
    return lastMs;
  };
  const parseIsoUncached = (s: string): number | undefined => {
    let t = isoFastPath(s, utc);
    if (!Number.isNaN(t)) return t;
    if (impossibleDate(s)) return undefined;
    if (utc || hasZone(s)) {
      let iso = s.length > 10 && s.charCodeAt(10) === 32 ? `${s.slice(0, 10)}T${s.slice(11)}` : s;
      if (!hasZone(iso)) iso += iso.length === 10 ? 'T00:00:00Z' : 'Z';
      t = Date.parse(iso);
      // Date.parse takes only ECMAScript's subset of ISO-8601 (offsets as ±HH:mm); luxon the rest.
      if (Number.isNaN(t)) {
        const d = DateTime.fromISO(s.replace(' ', 'T'), { zone: utc ? 'UTC' : tz });
        t = d.isValid ? d.toMillis() : Number.NaN;
      }
    } else {
      const d = DateTime.fromISO(s.replace(' ', 'T'), { zone: tz });
      t = d.isValid ? d.toMillis() : Number.NaN;
    }
    return Number.isFinite(t) ? Math.floor(t) : undefined;
  };
  const num = (v: unknown): number | undefined => {
    if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
    if (typeof v === 'bigint') return Number(v);
    if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) return Number(v);
    return undefined;
  };
  const epoch = (div: number) => (v: unknown) => {
    if (typeof v === 'bigint') {
      const q = v / BigInt(div);
      return Number(v < 0n && q * BigInt(div) !== v ? q - 1n : q);
    }
    const n = num(v);
    return n === undefined ? undefined : Math.floor(n / div);
  };
  if (format === 'epoch-s')
    return (v) => {
      const n = num(v);
      return n === undefined ? undefined : Math.floor(n * 1000);
    };
  if (format === 'epoch-ms') return epoch(1);
  if (format === 'wallclock-ms') {
    if (utc) return epoch(1);
    return (v) => {
      const n = num(v);
      if (n === undefined) return undefined;
      const w = DateTime.fromMillis(n, { zone: 'UTC' });
      const d = DateTime.fromObject(
        {
          year: w.year,
          month: w.month,
          day: w.day,
          hour: w.hour,
          minute: w.minute,
          second: w.second,
          millisecond: w.millisecond,
        },
        { zone: tz },
      );
      return d.isValid ? d.toMillis() : undefined;
    };
  }
  if (format === 'epoch-us') return epoch(1000);
  if (format === 'epoch-ns') return epoch(1_000_000);
  if (format === 'iso')
    return (v) => (v instanceof Date ? v.getTime() : typeof v === 'string' ? parseIso(v) : undefined);
  if (typeof format === 'object') {
    const fmt = strftimeToLuxon(format.strftime);
    return (v) => {
      if (typeof v !== 'string') return undefined;
      const d = DateTime.fromFormat(v, fmt, { zone: tz });
      return d.isValid ? d.toMillis() : undefined;
    };
  }
  // auto
  return (v) => {
    if (v instanceof Date) {
      const t = v.getTime();
      return Number.isFinite(t) ? t : undefined;
    }
    if (typeof v === 'string') {
      // `YYYY-…`: ISO-8601 without the numeric test first.
      if (v.length >= 10 && v.charCodeAt(4) === 45) return parseIso(v);
      if (/^-?\d+(\.\d+)?$/.test(v)) return byMagnitude(Number(v));
      return parseIso(v);
    }
    if (typeof v === 'bigint') return byMagnitude(Number(v));
    if (typeof v === 'number') return Number.isFinite(v) ? byMagnitude(v) : undefined;
    return undefined;
  };
}

function byMagnitude(n: number): number {
  const a = Math.abs(n);
  if (a < 1e11) return Math.floor(n * 1000);
  if (a < 1e14) return Math.floor(n);
  if (a < 1e17) return Math.floor(n / 1000);
  return Math.floor(n / 1e6);
}

/** Formats epoch ms as ISO-8601 UTC for messages. */
export function isoUtc(msValue: number): string {
  return Number.isFinite(msValue) ? new Date(msValue).toISOString() : String(msValue);
}
