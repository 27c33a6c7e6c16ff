/**
 * Exit codes and error classes shared by every command (man kappa(1), EXIT STATUS).
 *
 * Scripts rely on these codes: 0 success, 1 runtime failure (I/O, broker, S3),
 * 2 usage error, 3 data error (bad records over `--max-bad`, schema conflict),
 * 78 configuration error (EX_CONFIG from sysexits.h), 130/143 stopped by SIGINT/SIGTERM.
 */
export const ExitCode = {
  ok: 0,
  runtime: 1,
  usage: 2,
  data: 3,
  config: 78,
  /** Stopped by SIGINT / SIGTERM (128 + signal number), see src/stream/signals.ts. */
  sigint: 130,
  sigterm: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Base class: an error that carries the exit code the process should end with and an optional hint. */
export class KappaError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly hint?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad flags, unknown scheme, missing argument. Exit 2. */
export class UsageError extends KappaError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.usage, hint);
  }
}

/** Bad input data (malformed line, wrong type, schema conflict, too many bad records). Exit 3. */
export class DataError extends KappaError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.data, hint);
  }
}

/** I/O, broker or object-store failure. Exit 1. */
export class RuntimeError extends KappaError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.runtime, hint);
  }
}

/** Bad configuration (credentials, unreadable config, bad environment). Exit 78. */
export class ConfigError extends KappaError {
  constructor(message: string, hint?: string) {
    super(message, ExitCode.config, hint);
  }
}

/** Where a bad record came from: a file and line, a Parquet row group and row, or a Kafka partition and offset. */
export interface Location {
  /** File path or URI, or `kafka://…/topic`, or `stdin`. */
  source: string;
  /** 1-based line number in a text file. */
  line?: number;
  /** 0-based Parquet row group index and row within it. */
  rowGroup?: number;
  row?: number;
  /** Kafka partition and offset (offset as a decimal string: Kafka offsets are int64). */
  partition?: number;
  offset?: string;
}

/** Renders a location the way error messages print it, e.g. `data.csv line 17` or `t partition 2 offset 991`. */
export function formatLocation(loc: Location): string {
  const parts = [loc.source];
  if (loc.line !== undefined) parts.push(`line ${loc.line}`);
  if (loc.rowGroup !== undefined) parts.push(`row group ${loc.rowGroup}`);
  if (loc.row !== undefined) parts.push(`row ${loc.row}`);
  if (loc.partition !== undefined) parts.push(`partition ${loc.partition}`);
  if (loc.offset !== undefined) parts.push(`offset ${loc.offset}`);
  return parts.join(' ');
}
