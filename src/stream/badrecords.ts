/**
 * The `--on-error fail|skip|dead-letter=PATH` policy and `--max-bad N` limit for bad input records.
 *
 * Every bad record is counted. `fail` throws at the first one (exit 3); `skip` drops it;
 * `dead-letter=PATH` appends the raw input (one line per bad record, unchanged) to PATH. Past
 * `--max-bad` bad records the run fails with exit 3 whatever the policy.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { DataError, formatLocation, type Location, UsageError } from '../errors.js';

export type OnErrorPolicy = { mode: 'fail' } | { mode: 'skip' } | { mode: 'dead-letter'; path: string };

/** Parses the `--on-error` flag value. Throws UsageError for anything else. */
export function parseOnError(s: string): OnErrorPolicy {
  if (s === 'fail' || s === 'skip') return { mode: s };
  if (s.startsWith('dead-letter=') && s.length > 'dead-letter='.length)
    return { mode: 'dead-letter', path: s.slice('dead-letter='.length) };
  throw new UsageError(`--on-error: expected fail, skip or dead-letter=PATH, got '${s}'`);
}

export class BadRecords {
  /** Number of bad records seen. */
  count = 0;
  private fd: number | undefined;

  constructor(
    readonly policy: OnErrorPolicy = { mode: 'fail' },
    /** Most bad records tolerated before failing; Infinity for no limit. */
    readonly maxBad = Number.POSITIVE_INFINITY,
  ) {}

  /**
   * Reports one bad record. Throws DataError under `fail` or when over `--max-bad`.
   * @param raw the record's original text (a line, or JSON of a row) for the dead-letter file
   */
  report(loc: Location, reason: string, raw: string): void {
    this.count++;
    const where = formatLocation(loc);
    if (this.policy.mode === 'fail')
      throw new DataError(
        `bad record at ${where}: ${reason}`,
        'use --on-error skip or --on-error dead-letter=FILE to continue past bad records',
      );
    if (this.policy.mode === 'dead-letter') {
      if (this.fd === undefined) this.fd = openSync(this.policy.path, 'a');
      writeSync(this.fd, raw.endsWith('\n') ? raw : `${raw}\n`);
    }
    if (this.count > this.maxBad)
      throw new DataError(
        `too many bad records (${this.count} > --max-bad ${this.maxBad}); last at ${where}: ${reason}`,
      );
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
