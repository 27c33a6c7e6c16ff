/**
 * `kappa transform`: filter / map / flat-map / select / drop / rename / re-key / re-time / dedupe,
 * applied in the order given on the command line. Glue only: the steps are the TransformOperator
 * (src/ops/transform.ts), run between stdin and stdout by runOperator.
 */

import { Command } from 'commander';
import { type CheckpointFlags, withCheckpointOptions } from '../checkpoint/options.js';
import { UsageError } from '../errors.js';
import { loadModules } from '../ops/expr.js';
import { parseFieldList, parseRenames, TransformOperator, type TransformStep } from '../ops/transform.js';
import { runOperator } from '../stream/run.js';
import { parseDuration } from '../time/duration.js';
import {
  assertStateDirUsable,
  type CommonOptions,
  parseCount,
  runContext,
  stageCheckpointer,
  withCommonOptions,
} from './common.js';

interface TransformFlags extends CommonOptions, CheckpointFlags {
  module?: string[];
  within?: string;
  maxOutOfOrderness?: string;
  state?: string;
  stateCache?: string;
}

export function transformCommand(): Command {
  // Step flags are collected in command-line order, across kinds.
  const steps: TransformStep[] = [];
  const expr = (kind: 'filter' | 'map' | 'flat-map' | 'key' | 'ts' | 'dedupe') => (v: string) => {
    steps.push({ kind, expr: v });
    return v;
  };
  const fields = (kind: 'select' | 'drop') => (v: string) => {
    const list = parseFieldList(v);
    if (list.length === 0) throw new UsageError(`--${kind}: expected a list of fields, e.g. a,b,c`);
    steps.push({ kind, fields: list });
    return v;
  };
  const cmd = new Command('transform')
    .description(
      'filter, map, project, re-key, re-time and de-duplicate a kappa record stream (steps run in the order given)',
    )
    .option('--filter <expr>', 'keep records for which EXPR is truthy', expr('filter'))
    .option('--map <expr>', "replace the value by EXPR's result", expr('map'))
    .option(
      '--flat-map <expr>',
      'replace the record by one record per element of the array EXPR returns',
      expr('flat-map'),
    )
    .option(
      '--select <fields>',
      'keep only these value fields, in this order (a,b,c; dotted paths allowed)',
      fields('select'),
    )
    .option('--drop <fields>', 'remove these value fields', fields('drop'))
    .option('--rename <pairs>', 'rename value fields: old=new[,old2=new2]', (v: string) => {
      try {
        steps.push({ kind: 'rename', pairs: parseRenames(v) });
      } catch (e) {
        throw new UsageError(`--rename: ${(e as Error).message}; use old=new[,old2=new2]`);
      }
      return v;
    })
    .option('--key <expr>', "set the record key to EXPR's result (re-key)", expr('key'))
    .option(
      '--ts <expr>',
      're-assign event time to EXPR (epoch ms or a Date); watermarks are regenerated',
      expr('ts'),
    )
    .option(
      '--dedupe <expr>',
      'drop a record whose EXPR value was seen within --within of event time',
      expr('dedupe'),
    )
    .option('--within <dur>', 'dedupe horizon in event time, e.g. 10m')
    .option(
      '--max-out-of-orderness <dur>',
      'after --ts: watermark lag behind the largest new event time (default 0ms)',
    )
    .option(
      '--module <file>',
      'load named functions from a JS module for use in expressions (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--state <dir>', 'dedupe state directory (LevelDB; default: a temp dir removed on exit)')
    .option('--state-cache <n>', 'dedupe keys kept in memory before spilling to LevelDB', '100000');
  withCheckpointOptions(cmd);
  withCommonOptions(cmd).addHelpText(
    'after',
    `
Expressions are JavaScript over the record: r (the value's fields), key, ts (epoch ms), rec, the
--module functions and JavaScript's built-ins (Math, JSON, Date, …); no process, require, import(),
timers. They see a frozen copy of the record and must be synchronous. An expression is code: never
build one from untrusted input (node:vm is not a security boundary; see kappa-transform(1)).

Examples:
  kappa ingest flights.ndjson --ts-field date | kappa transform --filter 'r.delay > 60' --select origin,delay
  kappa transform --map '({...r, late: r.delay > 15})' --rename destination=dest
  kappa transform --key 'r.origin' --flat-map 'r.tags' --module ./helpers.js --filter 'isHub(r.origin)'
  kappa transform --ts 'Date.parse(r.arrival)' --max-out-of-orderness 1h
  kappa transform --dedupe 'r.event_id' --within 10m --on-error dead-letter=bad.ndjson
  KAPPA_CHECKPOINT_DIR=ck KAPPA_RESUME=1 sh -c 'kappa ingest f.ndjson --ts-field t --checkpoint-interval 10s | kappa transform --dedupe r.id --within 1h > out.kappa'

With a checkpoint dir the --dedupe keys are in every checkpoint and restored with --resume /
--from-savepoint (man kappa-checkpoints).`,
  );
  return cmd.action(async (o: TransformFlags) => {
    const run = [...steps];
    steps.length = 0;
    await runTransform(run, o);
  });
}

async function runTransform(steps: TransformStep[], o: TransformFlags): Promise<void> {
  if (steps.length === 0)
    throw new UsageError('no step given', 'give at least one of --filter, --map, --select, … (see --help)');
  const hasDedupe = steps.some((s) => s.kind === 'dedupe');
  if (hasDedupe && o.within === undefined)
    throw new UsageError('--dedupe needs --within DUR (e.g. --within 10m)');
  if (!hasDedupe && o.within !== undefined) throw new UsageError('--within applies only to --dedupe');
  if (o.maxOutOfOrderness !== undefined && !steps.some((s) => s.kind === 'ts'))
    throw new UsageError('--max-out-of-orderness applies only after --ts');
  assertStateDirUsable(o.state, o);
  const checkpoint = stageCheckpointer('transform', o);
  const scope = await loadModules(o.module ?? []);
  const op = new TransformOperator({
    steps,
    scope,
    within: o.within === undefined ? undefined : parseDuration(o.within, '--within'),
    maxOutOfOrderness:
      o.maxOutOfOrderness === undefined ? 0 : parseDuration(o.maxOutOfOrderness, '--max-out-of-orderness'),
    stateDir: o.state,
    stateCache: Math.max(1, parseCount(o.stateCache, '--state-cache') ?? 100_000),
  });
  const { bad, progress } = runContext('transform', o);
  let status = 'failed';
  try {
    status = await runOperator(op, { bad, progress, maxLineBytes: o.maxLineBytes, checkpoint });
  } finally {
    bad.close();
    progress.finish(status);
  }
}
