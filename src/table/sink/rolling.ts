/**
 * Rolling policy of the table sink (Flink's DefaultRollingPolicy): when an open part file is
 * finished and a new one started. A file rolls at `--roll-size` bytes (default 128 MiB), at
 * `--roll-records` records, when it has been open `--roll-interval` (processing time), when the
 * watermark closes its time partition, and when the schema grows under a format with fixed columns.
 */
import { UsageError } from '../../errors.js';
import { parseDuration } from '../../time/duration.js';

/** Default `--roll-size`: 128 MiB. */
export const DEFAULT_ROLL_SIZE = 128 * 1024 * 1024;

/** The size/count/age thresholds of one sink run. */
export class RollingPolicy {
  /** Bytes. */
  readonly size: number;
  readonly records: number;
  /** Milliseconds of processing time, or undefined for no age limit. */
  readonly interval: number | undefined;

  /**
   * @param o rollSize in bytes, rollRecords a count, rollInterval a duration text (`15m`)
   * @throws UsageError for a non-positive size or count, or an unparsable duration
   */
  constructor(o: { rollSize?: number; rollRecords?: number; rollInterval?: string }) {
    this.size = o.rollSize ?? DEFAULT_ROLL_SIZE;
    this.records = o.rollRecords ?? Number.POSITIVE_INFINITY;
    this.interval =
      o.rollInterval !== undefined ? parseDuration(o.rollInterval, '--roll-interval') : undefined;
    if (this.records <= 0) throw new UsageError('--roll-records: must be at least 1');
    if (this.size <= 0) throw new UsageError('--roll-size: must be positive');
  }

  /** True when a file of `bytes` and `rows` is full. */
  full(bytes: number, rows: number): boolean {
    return bytes >= this.size || rows >= this.records;
  }

  /** True when a file opened at `openedAt` (epoch ms) is older than the interval at `now`. */
  expired(openedAt: number, now: number): boolean {
    return this.interval !== undefined && now - openedAt >= this.interval;
  }
}
