/**
 * The `--on-error fail|skip|dead-letter=PATH` policy and `--max-bad N` limit for bad input records.
 *
 * Every bad record is counted. `fail` throws at the first one (exit 3); `skip` drops it;
 * `dead-letter=PATH` appends the raw input (one line per bad record, unchanged) to PATH. Past
 * `--max-bad` bad records the run fails with exit 3 whatever the policy.
 *
 * The dead-letter file is checked when the policy is parsed (it must be writable: a usage error at
 * start, not a failure at the first bad record) and, for ingest, against the inputs
 * (assertDeadLetterNotInput): a dead-letter file that is also an input would be read back and grow
 * forever. It is created at the first bad record, never empty.
 */
import { closeSync, existsSync, openSync, realpathSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { DataError, formatLocation, type Location, UsageError } from '../errors.js';
import { schemeOf } from '../storage/store.js';

export type OnErrorPolicy = { mode: 'fail' } | { mode: 'skip' } | { mode: 'dead-letter'; path: string };

/**
 * Parses the `--on-error` flag value and, for `dead-letter=PATH`, checks that PATH can be opened
 * for appending (by opening it; a file that did not exist is removed again, so no empty file stays).
 * @throws UsageError for an unknown policy or a dead-letter path that cannot be written (missing
 *   directory, a directory, no permission, read-only file system)
 */
export function parseOnError(s: string): OnErrorPolicy {
  if (s === 'fail' || s === 'skip') return { mode: s };
  if (s.startsWith('dead-letter=') && s.length > 'dead-letter='.length) {
    const path = s.slice('dead-letter='.length);
    unprobe(path, probe(path));
    return { mode: 'dead-letter', path };
  }
  throw new UsageError(`--on-error: expected fail, skip or dead-letter=PATH, got '${s}'`);
}

/**
 * Opens `path` for appending, creating it when missing, and closes it again.
 * @returns true when the file was created here (the caller removes it with `unprobe`)
 * @throws UsageError when it cannot be opened
 */
function probe(path: string): boolean {
  const existed = existsSync(path);
  try {
    if (existed && statSync(path).isDirectory()) throw new Error('it is a directory');
    closeSync(openSync(path, 'a'));
  } catch (e) {
    throw new UsageError(
      `--on-error dead-letter=${path}: cannot write ${path}: ${(e as Error).message}`,
      'give a file path in an existing directory you can write to',
    );
  }
  return !existed;
}

/** Removes a file that probe created. */
function unprobe(path: string, created: boolean): void {
  if (!created) return;
  try {
    unlinkSync(path);
  } catch {
    // already gone: nothing to clean up
  }
}

/** The canonical path of a local file (symlinks resolved), or undefined when it does not exist. */
function canonical(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Refuses a dead-letter file that the inputs include: the input itself, a file inside an input
 * directory, or a file an input glob matches, including a glob that matches it only once it exists
 * (`ingest 'logs/*.ndjson' --on-error dead-letter=logs/bad.ndjson` would loop from the second run
 * on). The inputs are resolved exactly as the files source resolves them (connectors/discover.ts); for
 * the check the dead-letter file is created if missing and removed again. Only local inputs are
 * compared (the dead-letter file is always local); `-`, `s3://` and `kafka://` are skipped.
 * @param inputs the SOURCE arguments of ingest (paths, globs, directories)
 * @param anyExtension whether `--format` was given (directories then yield files of any extension)
 * @throws UsageError naming the dead-letter path and the input that includes it
 */
export async function assertDeadLetterNotInput(
  policy: OnErrorPolicy,
  inputs: string[],
  anyExtension = false,
): Promise<void> {
  if (policy.mode !== 'dead-letter') return;
  const path = policy.path;
  const local = inputs.filter((s) => schemeOf(s) === 'file');
  if (local.length === 0) return;
  const created = probe(path);
  let clash: string | undefined;
  try {
    const dl = canonical(path) ?? resolve(canonical(dirname(path)) ?? dirname(path), basename(path));
    // Loaded here: discovery pulls in the formats and the Delta log reader, which a stage without a
    // dead-letter file does not need at start-up.
    const { discover } = await import('../connectors/discover.js');
    for (const src of local) {
      let files: string[];
      try {
        files = (await discover([src], anyExtension)).map((f) => f.uri.replace(/^file:\/\//, ''));
      } catch {
        continue; // the source reports its own error when it opens
      }
      if (files.some((f) => canonical(f) === dl)) {
        clash = src;
        break;
      }
    }
  } finally {
    unprobe(path, created);
  }
  if (clash !== undefined)
    throw new UsageError(
      `--on-error dead-letter=${path}: the dead-letter file is an input ('${clash}' includes it), so ingest would read its own bad records back and never end`,
      'write dead letters outside the input paths, e.g. --on-error dead-letter=bad/ingest.ndjson',
    );
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
