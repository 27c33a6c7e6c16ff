/**
 * `kappa compact TABLE`: small-file compaction and maintenance of a kappa table (local or s3://).
 * Glue only: flags -> CompactOptions, one call to compactTable (src/table/compact/), a summary
 * line on stderr. See kappa-compact(1).
 */
import { Command } from 'commander';
import { UsageError } from '../errors.js';
import { withS3Options } from '../storage/s3-options.js';
import { storeFor } from '../storage/store.js';
import { formatBytes } from '../stream/progress.js';
import { compactTable } from '../table/compact/index.js';
import { parseDuration } from '../time/duration.js';
import { parseBytes, parseCount } from './common.js';

interface CompactFlags {
  targetSize: string;
  minFiles: string;
  where?: string;
  includeOpen?: boolean;
  dryRun?: boolean;
  retain: string;
  vacuum?: boolean;
  keepLatestBy?: string;
  orderBy?: string;
  tsField?: string;
  commitEvery: string;
  logCheckpointInterval: string;
  quiet?: boolean;
  [flag: string]: unknown;
}

/** The `kappa compact` subcommand (flags, help text, action). */
export function compactCommand(): Command {
  const cmd = new Command('compact')
    .description('merge the small files of a kappa table atomically (Delta commit), and vacuum removed files')
    .argument('<table>', 'a table directory written by kappa sink (local path or s3://bucket/prefix)')
    .option('--target-size <bytes>', 'target size of a merged file, e.g. 128MiB', '128MiB')
    .option('--min-files <n>', 'skip partitions with fewer small files than this', '2')
    .option('--where <expr>', `only partitions whose values match, e.g. 'dt >= "2001-06-01"'`)
    .option('--include-open', 'also compact partitions without _SUCCESS (still being written)')
    .option('--dry-run', 'print the plan (one line per output file) and change nothing')
    .option('--retain <dur>', 'delete removed files this long after their removal, e.g. 1h (0: at once)', '0')
    .option('--vacuum', 'only delete removed files past --retain and the leftovers of crashed writers')
    .option(
      '--keep-latest-by <key>',
      'keep only the latest row per key (comma-separated columns) in each partition',
    )
    .option('--order-by <field>', 'with --keep-latest-by: breaks ties of event time (larger is later)')
    .option(
      '--ts-field <field>',
      'event-time column rows are ordered by (default: the first timestamp or date column)',
    )
    .option('--commit-every <n>', 'partitions per Delta commit (progress survives an interruption)', '16')
    .option(
      '--log-checkpoint-interval <n>',
      'write a Delta log checkpoint after every N-th table version (0: never)',
      '10',
    )
    .option('-q, --quiet', 'no summary on stderr');
  withS3Options(cmd).addHelpText(
    'after',
    `
Examples:
  kappa compact out/                                   # sealed partitions, files < 128MiB merged
  kappa compact out/ --where 'dt >= "2001-06-01"' --dry-run
  kappa compact s3://lake/events --target-size 256MiB --retain 1h
  kappa compact out/ --keep-latest-by id --order-by seq
  kappa compact out/ --vacuum --retain 7d

Each batch of partitions is one Delta commit (remove the inputs, add the merged files, dataChange
false), safe while a kappa sink appends. --keep-latest-by changes data (dataChange true).
See man kappa-compact.`,
  );
  return cmd.action(async (table: string, o: CompactFlags) => runCompact(table, o));
}

async function runCompact(table: string, f: CompactFlags): Promise<void> {
  const started = Date.now();
  const root = table.replace(/\/+$/, '');
  if (f.orderBy !== undefined && f.keepLatestBy === undefined)
    throw new UsageError('--order-by applies only with --keep-latest-by');
  const minFiles = parseCount(f.minFiles, '--min-files') ?? 2;
  const commitEvery = parseCount(f.commitEvery, '--commit-every') ?? 16;
  if (commitEvery < 1) throw new UsageError('--commit-every: expected at least 1');
  const targetSize = parseBytes(f.targetSize, '--target-size');
  if (targetSize < 1) throw new UsageError('--target-size: expected a positive size');
  const retainMs = f.retain === '0' ? 0 : parseDuration(f.retain, '--retain');
  const keepLatestBy = f.keepLatestBy
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const res = await compactTable(
    storeFor(root),
    root,
    {
      targetSize,
      minFiles,
      where: f.where,
      includeOpen: f.includeOpen === true,
      dryRun: f.dryRun === true,
      retainMs,
      vacuum: f.vacuum === true,
      keepLatestBy,
      orderBy: f.orderBy,
      tsField: f.tsField,
      commitEvery,
      checkpointInterval: parseCount(f.logCheckpointInterval, '--log-checkpoint-interval') ?? 10,
    },
    (line) => process.stdout.write(`${line}\n`),
  );
  if (f.quiet) return;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const rec = res.recovery;
  const repaired = [
    rec.rolledForward ? `rolled forward ${rec.rolledForward} crashed commit(s)` : '',
    rec.discarded ? `discarded ${rec.discarded} uncommitted commit(s)` : '',
    rec.inProgressRemoved ? `removed ${rec.inProgressRemoved} in-progress file(s) of crashed writers` : '',
  ].filter(Boolean);
  const deleted = `deleted ${res.deleted.files} removed file(s) (${formatBytes(res.deleted.bytes)})`;
  let line: string;
  if (f.vacuum) line = `vacuum: ${deleted}`;
  else {
    const what = f.dryRun ? 'would compact' : 'compacted';
    line = `${what} ${f.dryRun ? res.plan.length : res.partitions} partition(s): ${res.filesBefore} files (${formatBytes(res.bytesBefore)}) -> ${res.filesAfter} files${f.dryRun ? '' : ` (${formatBytes(res.bytesAfter)})`}, ${res.rowsBefore} rows${f.dryRun ? '' : ` -> ${res.rowsAfter} rows`}`;
    if (res.open) line += `; ${res.open} open partition(s) left alone (no _SUCCESS; --include-open)`;
    if (res.conflicts) line += `; ${res.conflicts} batch(es) planned again after concurrent removes`;
    if (!f.dryRun) line += `; ${deleted}`;
  }
  if (repaired.length) line += `; ${repaired.join(', ')}`;
  process.stderr.write(`kappa compact: ${line}; table version ${res.version}, ${secs}s\n`);
}
