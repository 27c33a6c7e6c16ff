/**
 * Flags and plumbing shared by every command: `--quiet`, `--on-error`, `--max-bad`, and the
 * end-of-run summary. Commands stay thin: parse flags, build source -> operators -> sink, run.
 */
import { readdirSync } from 'node:fs';
import { Command } from 'commander';
import {
  type CheckpointFlags,
  checkpointSettings,
  type SourceCheckpointFlags,
  withCheckpointOptions,
  withSourceCheckpointOptions,
} from '../checkpoint/options.js';
import type { SinkPart } from '../checkpoint/snapshot.js';
import type { SourceCheckpointer } from '../checkpoint/source.js';
import { StageCheckpointer } from '../checkpoint/stage.js';
import { UsageError } from '../errors.js';
import { BadRecords, parseOnError } from '../stream/badrecords.js';
import { stageOutput } from '../stream/direct.js';
import { parseStreamFormat, setStreamFormat, stdoutReader } from '../stream/negotiate.js';
import { Progress } from '../stream/progress.js';

export interface CommonOptions {
  quiet?: boolean;
  onError: string;
  maxBad?: string;
  /** `--max-line-bytes` in bytes, parsed; undefined: the default (DEFAULT_MAX_LINE_BYTES, 64 MiB). */
  maxLineBytes?: number;
}

/**
 * Adds `--quiet`, `--on-error`, `--max-bad` and `--max-line-bytes` to a command, and
 * `--stream-format` to every command that writes a stream (all but sink; negotiate.ts).
 */
export function withCommonOptions(cmd: Command): Command {
  if (cmd.name() !== 'sink')
    cmd.option(
      '--stream-format <fmt>',
      'encoding of the output stream: auto (Arrow IPC when a kappa stage reads stdout, else NDJSON) | ndjson | arrow (default: $KAPPA_STREAM_FORMAT, else auto)',
      (v: string) => {
        const f = parseStreamFormat(v);
        setStreamFormat(f);
        return f;
      },
    );
  return cmd
    .option('-q, --quiet', 'no progress bar and no summary on stderr')
    .option('--on-error <policy>', 'bad records: fail | skip | dead-letter=PATH', 'fail')
    .option('--max-bad <n>', 'fail (exit 3) once more than N records were bad, whatever --on-error says')
    .option(
      '--max-line-bytes <size>',
      'longest input line (stream or NDJSON), e.g. 1MiB; a longer line is a bad record (default: 64MiB)',
      parseMaxLineBytes,
    );
}

/** Parses `--max-line-bytes` (a size, see parseBytes). Throws UsageError unless it is at least 1 byte. */
export function parseMaxLineBytes(v: string): number {
  const n = parseBytes(v, '--max-line-bytes');
  if (n < 1) throw new UsageError(`--max-line-bytes: must be at least 1 byte, got '${v}'`);
  return n;
}

/** Parses a non-negative integer flag. */
export function parseCount(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${flag}: expected a non-negative integer, got '${v}'`);
  return Number(v);
}

/** Parses a byte size such as `128MiB`, `64MB`, `1G`, `5000` (bytes). Binary units for KiB/MiB/GiB and K/M/G. */
export function parseBytes(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(v.trim());
  if (!m) throw new UsageError(`${flag}: '${v}' is not a size; use e.g. 128MiB, 512KiB, 1GiB`);
  const n = Number(m[1]);
  const u = (m[2] ?? 'b').toLowerCase();
  const mult: Record<string, number> = {
    b: 1,
    k: 1024,
    kib: 1024,
    kb: 1000,
    m: 1024 ** 2,
    mib: 1024 ** 2,
    mb: 1000 ** 2,
    g: 1024 ** 3,
    gib: 1024 ** 3,
    gb: 1000 ** 3,
  };
  return Math.round(n * mult[u]);
}

/**
 * Builds the bad-record policy and the progress/summary display for one run.
 * @param source true for a source stage (ingest): it draws the pipeline's progress bar
 */
export function runContext(
  command: string,
  o: CommonOptions,
  unit: 'bytes' | 'rows' = 'rows',
  total?: number,
  source = false,
): { bad: BadRecords; progress: Progress } {
  const bad = new BadRecords(
    parseOnError(o.onError),
    parseCount(o.maxBad, '--max-bad') ?? Number.POSITIVE_INFINITY,
  );
  return { bad, progress: new Progress(command, o.quiet ?? false, unit, total, source) };
}

/**
 * The checkpoint runtime of a stage after the source (src/checkpoint/stage.ts) from its flags: a
 * sink is always the last stage; another stage is last when its stdout is positively not read by a
 * kappa stage (a file, a terminal, jq), decided once at the first completion.
 * @throws UsageError for bad checkpoint flags
 */
export function stageCheckpointer(command: string, flags: CheckpointFlags, sink = false): StageCheckpointer {
  let last: boolean | undefined = sink ? true : undefined;
  return new StageCheckpointer(
    command,
    checkpointSettings(flags),
    () => {
      last ??= stageOutput() === undefined && stdoutReader() === 'other';
      return last;
    },
    (m) => process.stderr.write(`kappa ${command}: ${m}\n`),
  );
}

/**
 * Asks the sink target named in a sink part which epoch it committed last (for `--resume` after a
 * crash between a sink's commit and the checkpoint's completion).
 */
export async function probeSinkCommit(part: SinkPart): Promise<number | null | undefined> {
  // Loaded here, not at start-up: only a resuming source probes, and the sink targets pull in the
  // Parquet writer and the table code.
  const { SINK_TARGETS } = await import('../connectors/index.js');
  const t = SINK_TARGETS.find((x) => x.name === part.target);
  return t?.committedEpoch ? t.committedEpoch(part.descriptor) : Promise.resolve(undefined);
}

/**
 * A source's checkpoint runtime: checkpoint/source.ts `prepareSourceCheckpointing`, whose module is
 * loaded only when the run has a checkpoint directory ($KAPPA_CHECKPOINT_DIR or the flag) or sets
 * some checkpoint flag. Without either it returns undefined anyway, and its module pulls in the
 * savepoint reader and writer (hyparquet, hyparquet-writer, zstd WebAssembly): tens of ms of
 * start-up that a source without checkpoints does not pay.
 * @param flags the parsed options of `kappa ingest`/`replay` (SourceCheckpointFlags among others)
 * @returns undefined when the run takes no checkpoints
 * @throws UsageError for bad checkpoint flags (prepareSourceCheckpointing's errors, unchanged)
 */
export async function sourceCheckpointing(
  command: string,
  flags: SourceCheckpointFlags,
  note: (m: string) => void,
): Promise<SourceCheckpointer | undefined> {
  const named = flags as unknown as Record<string, unknown>;
  const given = checkpointOptionNames().some((n) => named[n] !== undefined && named[n] !== false);
  if (!given && checkpointSettings(flags).dir === undefined) return undefined;
  const { prepareSourceCheckpointing } = await import('../checkpoint/source.js');
  return prepareSourceCheckpointing(command, flags, probeSinkCommit, note);
}

/** Attribute names of every checkpoint option of a source (`checkpointDir`, `resume`, …). */
function checkpointOptionNames(): string[] {
  const probe = withSourceCheckpointOptions(withCheckpointOptions(new Command()));
  return probe.options.map((o) => o.attributeName());
}

/**
 * `--state DIR`: a directory that already holds state is only used with `--resume` or
 * `--from-savepoint` (which replace its content with the restored snapshot): never silently reused,
 * never silently wiped.
 * @throws UsageError for a non-empty directory without either
 */
export function assertStateDirUsable(dir: string | undefined, flags: CheckpointFlags): void {
  if (dir === undefined) return;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return; // missing: created at open
  }
  if (entries.length === 0) return;
  const s = checkpointSettings(flags);
  if (s.resume || s.fromSavepoint !== undefined) return;
  throw new UsageError(
    `--state ${dir} is not empty (it holds the state of an earlier run)`,
    'give --resume to restore the newest checkpoint into it (its content is replaced), or point --state at an empty directory',
  );
}
