/**
 * Duration flags (`--max-out-of-orderness 5s`, `--tumbling 1h`, `--within 2h`): parsed with the
 * `ms` library (`500ms`, `10s`, `5m`, `1h`, `1d`, `2 hours`), or ISO-8601 (`PT1H30M`) via luxon.
 * Bare numbers are rejected: a duration needs a unit.
 */
import { Duration } from 'luxon';
import ms from 'ms';
import { UsageError } from '../errors.js';

/**
 * Parses a duration to integer milliseconds.
 * @param flag the flag name for the error message, e.g. `--tumbling`
 * @throws UsageError when the text is not a duration with a unit, or is negative
 */
export function parseDuration(text: string, flag = 'duration'): number {
  const t = text.trim();
  let v: number | undefined;
  if (/^P/i.test(t)) {
    const d = Duration.fromISO(t.toUpperCase());
    if (d.isValid) v = d.as('milliseconds');
  } else if (!/^-?\d+(\.\d+)?$/.test(t)) {
    const r = ms(t as ms.StringValue);
    if (typeof r === 'number' && Number.isFinite(r)) v = r;
  }
  if (v === undefined || v < 0)
    throw new UsageError(
      `${flag}: '${text}' is not a duration; use a number with a unit, e.g. 500ms, 30s, 10m, 1h, 1d`,
    );
  return Math.round(v);
}

/** Formats milliseconds compactly for messages, e.g. `1h`, `90s`, `250ms`. */
export function formatDuration(msValue: number): string {
  return ms(msValue);
}
