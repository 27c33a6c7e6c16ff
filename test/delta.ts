/**
 * Test helper: an independent Delta Lake reader. Opens table directories with Delta Kernel for
 * Java (io.delta:delta-kernel-defaults, the Delta project's reference read path) through the small
 * program in test/delta-kernel/ (DeltaRead.java), so tests can check kappa's tables the way other
 * engines see them instead of comparing kappa's log with kappa's own reader.
 *
 * The program is built once per clone by test/delta-kernel/build.sh (test/run.sh calls it before
 * the tests; Maven Central, cached in ~/.m2). JVM start-up costs seconds on this machine: read
 * several tables per call with readDeltaTables when a test needs many.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

const KERNEL_DIR = join(ROOT, 'test', 'delta-kernel');
const TARGET = join(KERNEL_DIR, 'target');

/** A value as Delta Kernel read it (see kernelValue for the encoding). */
export type KernelValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | KernelValue[]
  | { [field: string]: KernelValue };

/** One row: column name -> value, partition columns included. */
export type KernelRow = Record<string, KernelValue>;

/** A field of the table schema, as in Delta's JSON schema (PROTOCOL.md "Schema Serialization"). */
export interface KernelField {
  name: string;
  /** A primitive type name ("long", "double", "timestamp_ntz", …) or a nested type object. */
  type: string | Record<string, unknown>;
  nullable: boolean;
  metadata: Record<string, unknown>;
}

/**
 * A Delta table snapshot as Delta Kernel sees it.
 *
 * Value encoding of `rows` (top-level columns): long -> bigint (exact); byte/short/integer,
 * float/double -> number (NaN and infinities as the strings "NaN", "Infinity", "-Infinity");
 * boolean -> boolean; string -> string; binary -> base64 string; decimal -> plain decimal string;
 * date -> "YYYY-MM-DD"; timestamp (UTC-adjusted) -> ISO-8601 "YYYY-MM-DDTHH:MM:SS.ffffffZ", exactly
 * six fraction digits (microseconds, Delta's unit); timestamp_ntz -> the same without "Z"; struct
 * -> object; array -> array; map -> array of [key, value] pairs; null -> null. Inside nested values
 * longs stay decimal strings.
 */
export interface KernelTable {
  /** The directory as given. */
  path: string;
  /** The snapshot's table version (the latest unless a version was asked for). */
  version: number;
  schema: KernelField[];
  partitionColumns: string[];
  /**
   * Every row of the data files Kernel read, in the order read (scan-file order; do not rely on
   * it). Without a filter these are all live rows; with one, all rows of the files kept.
   */
  rows: KernelRow[];
  /** Data files read (after partition pruning and stats-based skipping when a filter was given). */
  files: number;
  /** Live data files in the snapshot. */
  totalFiles: number;
  /** With `txn` in the spec: Kernel's latest transaction version of that appId (null: none). */
  txnVersion?: number | null;
}

/** Kernel could not read a table (the Java exception's class and message). */
export class DeltaKernelError extends Error {
  constructor(
    readonly table: string,
    readonly javaError: string,
  ) {
    super(`Delta Kernel could not read ${table}: ${javaError}`);
    this.name = 'DeltaKernelError';
  }
}

/**
 * What to read: a table directory, optionally at an older version (time travel), optionally with a
 * predicate `[column, op, value]` (op one of = < <= > >=; value text parsed by the column's Delta
 * type: integers, doubles, strings, booleans, dates `YYYY-MM-DD`, timestamps as ISO instants with
 * `Z`, timestamp_ntz as ISO local date-times). Kernel uses the predicate only to prune partitions
 * and skip files by their `add.stats`; it still returns every row of the files it keeps, so a test
 * filters the rows itself and a missing row means the log's partition values or stats are wrong.
 */
export type TableSpec =
  | string
  | {
      dir: string;
      version?: number;
      filter?: KernelFilter;
      /** An appId: Kernel reports its latest txn version (`KernelTable.txnVersion`). */
      txn?: string;
    };

/** A predicate for Kernel's partition pruning and data skipping: `[column, op, value]`. */
export type KernelFilter = [column: string, op: '=' | '<' | '<=' | '>' | '>=', value: string];

type Line =
  | {
      kind: 'snapshot';
      table: string;
      version: number;
      schema: { fields: KernelField[] };
      partitionColumns: string[];
      txn?: { appId: string; version: number | null };
    }
  | { kind: 'row'; table: string; value: Record<string, KernelValue> }
  | { kind: 'end'; table: string; rows: number; files: number; totalFiles: number }
  | { kind: 'error'; table: string; error: string };

/** The java command line that runs DeltaRead (throws if test/delta-kernel/build.sh never ran). */
function javaArgs(): string[] {
  if (!existsSync(join(TARGET, '.complete')))
    throw new Error(
      `the Delta Kernel reader is not built (${TARGET}/.complete missing): run test/delta-kernel/build.sh (test/run.sh does it before the tests)`,
    );
  // C1 only + serial GC: start-up dominates (a few seconds); these flags about halve it.
  return [
    '-XX:TieredStopAtLevel=1',
    '-XX:+UseSerialGC',
    '-cp',
    `${join(TARGET, 'classes')}:${join(TARGET, 'lib', '*')}`,
    'kappa.test.DeltaRead',
  ];
}

/** Converts the top-level long columns of a row (decimal strings on the wire) to bigint. */
function typed(value: Record<string, KernelValue>, longs: Set<string>): KernelRow {
  for (const k of longs) {
    const v = value[k];
    if (typeof v === 'string') value[k] = BigInt(v);
  }
  return value;
}

/**
 * Reads several tables in one JVM. Resolves with one entry per spec, in order: the snapshot, or a
 * DeltaKernelError when Kernel refused that table (the others are still read). Rejects only when the
 * program itself fails (not built, JVM crash, timeout after `timeoutMs`, default 180 000 ms).
 */
export function readDeltaTables(
  specs: TableSpec[],
  opts: { timeoutMs?: number } = {},
): Promise<(KernelTable | DeltaKernelError)[]> {
  const args = javaArgs();
  for (const s of specs) {
    if (typeof s === 'string') args.push(s);
    else {
      if (s.version !== undefined) args.push('--version', String(s.version));
      if (s.filter) args.push('--filter', ...s.filter);
      if (s.txn !== undefined) args.push('--txn', s.txn);
      args.push(s.dir);
    }
  }
  return new Promise((resolve, reject) => {
    const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString();
      if (code !== 0 && code !== 1) {
        reject(new Error(`DeltaRead exited with ${code ?? signal}: ${stderr}`));
        return;
      }
      try {
        resolve(parseOutput(Buffer.concat(out).toString(), specs.length, stderr));
      } catch (e) {
        reject(e);
      }
    });
  });
}

function parseOutput(text: string, n: number, stderr: string): (KernelTable | DeltaKernelError)[] {
  const results: (KernelTable | DeltaKernelError)[] = [];
  let cur: KernelTable | undefined;
  let longs = new Set<string>();
  for (const l of text.split('\n')) {
    if (!l) continue;
    const line = JSON.parse(l) as Line;
    switch (line.kind) {
      case 'snapshot':
        cur = {
          path: line.table,
          version: line.version,
          schema: line.schema.fields,
          partitionColumns: line.partitionColumns,
          ...(line.txn ? { txnVersion: line.txn.version } : {}),
          rows: [],
          files: 0,
          totalFiles: 0,
        };
        longs = new Set(line.schema.fields.filter((f) => f.type === 'long').map((f) => f.name));
        break;
      case 'row':
        if (!cur) throw new Error(`DeltaRead: row before snapshot: ${l}`);
        cur.rows.push(typed(line.value, longs));
        break;
      case 'end':
        if (!cur || cur.rows.length !== line.rows)
          throw new Error(
            `DeltaRead: end of ${line.table} after ${cur?.rows.length} rows, says ${line.rows}`,
          );
        cur.files = line.files;
        cur.totalFiles = line.totalFiles;
        results.push(cur);
        cur = undefined;
        break;
      case 'error':
        results.push(new DeltaKernelError(line.table, line.error));
        cur = undefined;
        break;
    }
  }
  if (results.length !== n)
    throw new Error(`DeltaRead: ${results.length} of ${n} tables reported; stderr: ${stderr}`);
  return results;
}

/**
 * Reads one table with Delta Kernel: its snapshot version, schema, partition columns and every
 * live row. Rejects with DeltaKernelError when Kernel refuses the table (not a Delta table, a
 * corrupt log, a data file that does not match the schema, …).
 */
export async function readDeltaTable(
  dir: string,
  opts: { version?: number; filter?: KernelFilter } = {},
): Promise<KernelTable> {
  const [r] = await readDeltaTables([{ dir, ...opts }]);
  if (r instanceof DeltaKernelError) throw r;
  return r;
}

/**
 * Rows as a sorted list of canonical JSON strings (keys sorted, bigint as "<digits>n"), for
 * multiset comparison with rows from another reader (e.g. DuckDB's getRowObjects(), whose BIGINT
 * values are bigint too).
 */
export function canonicalRows(rows: Record<string, unknown>[]): string[] {
  return rows
    .map((r) =>
      JSON.stringify(
        Object.fromEntries(
          Object.keys(r)
            .sort()
            .map((k) => [k, r[k]]),
        ),
        (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v),
      ),
    )
    .sort();
}
