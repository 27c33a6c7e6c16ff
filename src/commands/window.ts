/**
 * `kappa window`: event-time tumbling, sliding and session windows with aggregates. Glue only: the
 * WindowOperator (src/ops/window/operator.ts) between stdin and stdout, the late-record policy
 * (`--late-output` side output, `--on-late fail|drop`) and the state/summary counters.
 */

import { Command } from 'commander';
import { type CheckpointFlags, withCheckpointOptions } from '../checkpoint/options.js';
import { DataError, UsageError } from '../errors.js';
import { compileExpr } from '../ops/expr.js';
import { compilePath } from '../ops/path.js';
import { parseAggs } from '../ops/window/aggregate.js';
import { type KeySpec, WindowOperator, type WindowSpec } from '../ops/window/operator.js';
import { DEFAULT_MAX_KEY_GROUPS } from '../state/keygroup.js';
import { encodeRecord, type Rec } from '../stream/protocol.js';
import { runOperator } from '../stream/run.js';
import { SideOutput, withSideOutputs } from '../stream/side-output.js';
import { formatDuration, parseDuration } from '../time/duration.js';
import {
  assertStateDirUsable,
  type CommonOptions,
  parseCount,
  runContext,
  stageCheckpointer,
  withCommonOptions,
} from './common.js';

interface WindowFlags extends CommonOptions, CheckpointFlags {
  key?: string;
  tumbling?: string;
  sliding?: string;
  session?: string;
  maxSession?: string;
  offset?: string;
  agg: string;
  allowedLateness?: string;
  lateOutput?: string;
  onLate?: string;
  emit: string;
  state?: string;
  stateCache: string;
  maxKeyGroups: string;
  statsEvery?: string;
}

const FIELD_PATH = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;

const LATE_HINT =
  'keep late records with --late-output FILE, drop them knowingly with --on-late drop, or accept them with --allowed-lateness DUR; a bounded file source emits no intermediate watermarks unless --max-out-of-orderness is given';

export function windowCommand(): Command {
  const cmd = new Command('window')
    .description('event-time tumbling, sliding and session windows with aggregates, on keyed state')
    .option(
      '--key <field|expr>',
      'window key: a field (dotted path; `r.origin` = `origin`) or a JS expression over r, key, ts (default: the record key); a record without the field is a bad record',
    )
    .option('--tumbling <dur>', 'tumbling windows of this size, e.g. 1h')
    .option('--sliding <size,slide>', 'sliding (hopping) windows, e.g. 2h,30m')
    .option('--session <gap>', 'session windows closed by this much event-time inactivity, e.g. 30m')
    .option('--max-session <dur>', 'with --session: force-fire a session once it spans this long')
    .option(
      '--offset <dur>',
      'shift tumbling/sliding window alignment from the epoch, e.g. 5h for UTC-5 days',
    )
    .option(
      '--agg <list>',
      'aggregates: count, sum(f), avg(f), min(f), max(f), first(f), last(f), count_distinct(f), approx_count_distinct(f), median(f), quantile_cont(f,q), quantile_disc(f,q) (alias quantile), p50/p90/p95/p99(f) (= quantile_cont), approx_quantile(f,q) (t-digest), each [as name]',
      'count',
    )
    .option(
      '--allowed-lateness <dur>',
      'keep fired windows this long for late records (re-fires updated results)',
    )
    .option(
      '--late-output <path>',
      'write records later than the allowed lateness to this file (a kappa stream side output)',
    )
    .option(
      '--on-late <policy>',
      'without --late-output: fail (default: exit 3 at the first late record) | drop (count and drop them)',
    )
    .option(
      '--emit <mode>',
      'final (one result per window) | early:DUR (also provisional results every DUR of event time)',
      'final',
    )
    .option('--state <dir>', 'keyed state directory (LevelDB; default: a temp dir removed on exit)')
    .option(
      '--state-cache <n>',
      'state entries (windows; for sessions: keys) kept in memory before spilling to LevelDB (about 1 KB each)',
      '1000000',
    )
    .option(
      '--max-key-groups <n>',
      'key groups of the state: every state key is prefixed with its key group (murmur3 of the key mod N)',
      String(DEFAULT_MAX_KEY_GROUPS),
    )
    .option('--stats-every <dur>', 'print open-state counters on stderr this often (wall time), e.g. 10s');
  withCheckpointOptions(cmd);
  withCommonOptions(cmd).addHelpText(
    'after',
    `
A window [start, end) fires when the watermark passes its end; its result has ts = end - 1 and
value {window_start, window_end, <key>, aggregates…}. End of input fires every open window.
A record behind the watermark by more than --allowed-lateness is late: it goes to --late-output,
or is dropped and counted with --on-late drop; otherwise the run fails (exit 3) at the first one.

Examples:
  kappa ingest flights.parquet --ts-field date | kappa window --key origin --tumbling 1h --agg 'count, avg(delay), max(delay)' | kappa sink -
  kappa window --key user --sliding 2h,30m --agg 'count, p99(latency) as p99, approx_quantile(latency, 0.5)' --allowed-lateness 10m --late-output late.kappa
  kappa window --key user --session 30m --max-session 1d --agg 'count, first(page), last(page)'
  kappa window --key 'r.origin + "-" + r.destination' --tumbling 1d --offset 5h --emit early:1h
  KAPPA_CHECKPOINT_DIR=ck KAPPA_RESUME=1 sh -c 'kappa ingest f.ndjson --ts-field t --checkpoint-interval 10s | kappa window --key k --tumbling 1h --agg count | kappa sink out/'

With a checkpoint dir (from the source's header) open windows are in every checkpoint and restored
with --resume / --from-savepoint; a stop with savepoint fires nothing (man kappa-checkpoints).`,
  );
  return cmd.action(async (o: WindowFlags) => runWindow(o));
}

function parseWindow(o: WindowFlags): WindowSpec {
  const given = [o.tumbling, o.sliding, o.session].filter((x) => x !== undefined).length;
  if (given !== 1) throw new UsageError('give exactly one of --tumbling, --sliding, --session');
  const offset = o.offset === undefined ? 0 : parseDuration(o.offset, '--offset');
  if (o.maxSession !== undefined && o.session === undefined)
    throw new UsageError('--max-session needs --session');
  if (o.session !== undefined) {
    if (o.offset !== undefined) throw new UsageError('--offset applies to --tumbling and --sliding only');
    const gap = parseDuration(o.session, '--session');
    if (gap <= 0) throw new UsageError('--session: the gap must be positive');
    const maxSession = o.maxSession === undefined ? undefined : parseDuration(o.maxSession, '--max-session');
    if (maxSession !== undefined && maxSession <= 0) throw new UsageError('--max-session must be positive');
    return { kind: 'session', gap, maxSession };
  }
  if (o.tumbling !== undefined) {
    const size = parseDuration(o.tumbling, '--tumbling');
    if (size <= 0) throw new UsageError('--tumbling: the size must be positive');
    return { kind: 'tumbling', size, offset };
  }
  const parts = o.sliding!.split(',');
  if (parts.length !== 2)
    throw new UsageError(`--sliding: expected SIZE,SLIDE (e.g. 2h,30m), got '${o.sliding}'`);
  const size = parseDuration(parts[0], '--sliding size');
  const slide = parseDuration(parts[1], '--sliding slide');
  if (slide <= 0 || size <= 0) throw new UsageError('--sliding: size and slide must be positive');
  if (slide > size)
    throw new UsageError('--sliding: the slide must not exceed the size (use --tumbling for gaps)');
  return { kind: 'sliding', size, slide, offset };
}

/**
 * `--key`: a field path (`origin`, `a.b`), the same path written as transform's expressions write
 * it (`r.origin` = `origin`; a top-level field named `r` is then `r.r`), or any other expression.
 */
function parseKey(k: string | undefined): KeySpec {
  if (k === undefined) return { kind: 'record' };
  if (FIELD_PATH.test(k)) {
    const path = k.startsWith('r.') ? k.slice(2) : k;
    return { kind: 'field', path, get: compilePath(path) };
  }
  return { kind: 'expr', src: k, fn: compileExpr(k, {}, '--key') };
}

function parseEmit(s: string): number | undefined {
  if (s === 'final') return undefined;
  if (s.startsWith('early:')) {
    const d = parseDuration(s.slice('early:'.length), '--emit early');
    if (d <= 0) throw new UsageError('--emit early:DUR needs a positive duration');
    return d;
  }
  throw new UsageError(`--emit: expected final or early:DUR (e.g. early:1m), got '${s}'`);
}

async function runWindow(o: WindowFlags): Promise<void> {
  const window = parseWindow(o);
  const key = parseKey(o.key);
  const aggs = parseAggs(o.agg);
  const early = parseEmit(o.emit);
  const stateCache = parseCount(o.stateCache, '--state-cache')!;
  if (stateCache < 1) throw new UsageError('--state-cache must be at least 1');
  const maxKeyGroups = parseCount(o.maxKeyGroups, '--max-key-groups')!;
  if (maxKeyGroups < 1 || maxKeyGroups > 65536) throw new UsageError('--max-key-groups must be 1..65536');
  const statsEveryMs = o.statsEvery === undefined ? undefined : parseDuration(o.statsEvery, '--stats-every');
  if (o.onLate !== undefined && o.onLate !== 'fail' && o.onLate !== 'drop')
    throw new UsageError(`--on-late: expected fail or drop, got '${o.onLate}'`);
  if (o.onLate !== undefined && o.lateOutput !== undefined)
    throw new UsageError('--on-late applies without --late-output only (late records go to the file)');
  const lateness =
    o.allowedLateness === undefined ? 0 : parseDuration(o.allowedLateness, '--allowed-lateness');
  assertStateDirUsable(o.state, o);
  const checkpoint = stageCheckpointer('window', o);
  const { bad, progress } = runContext('window', o);
  const late =
    o.lateOutput === undefined ? undefined : await SideOutput.create(o.lateOutput, '--late-output');
  const op: WindowOperator = new WindowOperator({
    window,
    key,
    aggs,
    allowedLateness: lateness,
    early,
    onLate: (r, wm) => {
      if (late) late.record(r);
      else if (o.onLate !== 'drop') throw lateError(r, op.recordsIn, wm, lateness, op.late);
    },
    onBad: (r, reason) => bad.report({ source: 'stdin' }, `${reason} (ts ${r.ts})`, encodeRecord(r)),
    stateDir: o.state,
    stateCache,
    maxKeyGroups,
  });
  let status = 'failed';
  try {
    status = await runOperator(withSideOutputs(op, late ? [late] : []), {
      bad,
      progress,
      statsEveryMs,
      maxLineBytes: o.maxLineBytes,
      checkpoint,
    });
  } finally {
    bad.close();
    // A failed run keeps what was written, without the end line (readers see it was cut off).
    await late?.abort();
    progress.stats.extra['peak rss'] = `${(process.resourceUsage().maxRSS / 1024).toFixed(1)} MB`;
    progress.finish(status);
  }
}

/** The error of the default late policy: the first late record fails the run (exit 3). */
function lateError(r: Rec, nth: number, wm: number, lateness: number, count: number): DataError {
  const where = r.prov?.source
    ? ` (${r.prov.source}${r.prov.partition !== undefined ? ` partition ${r.prov.partition}` : ''}${r.prov.offset !== undefined ? ` offset ${r.prov.offset}` : ''})`
    : '';
  const iso = (t: number) => (Number.isFinite(t) ? new Date(t).toISOString() : String(t));
  return new DataError(
    `late record: input record ${nth}${where} with ts ${r.ts} (${iso(r.ts)}), key ${JSON.stringify(r.key ?? null)}, is behind the watermark ${iso(wm)} by more than the allowed lateness (${lateness === 0 ? '0' : formatDuration(lateness)}); ${count} late record(s) so far; failing at the first one instead of dropping it`,
    LATE_HINT,
  );
}
