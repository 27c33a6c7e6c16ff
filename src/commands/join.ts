/**
 * `kappa join`: joins the kappa stream on stdin (left) with a second input (`--right`). Glue only:
 * flags -> an operator from src/ops/join/ -> a runtime: `runTwoInputs` (src/stream/two-inputs.ts)
 * for the interval and the as-of join, `runOperator` for the lookup join (its right side is a
 * finite table read once through the connectors of `kappa ingest`). Late rows go to
 * `--late-output` (a side output), are dropped and counted (`--on-late drop`), or fail the run.
 */
import { createReadStream, type ReadStream, statSync } from 'node:fs';
import { Command } from 'commander';
import { removeTrigger, writeTrigger } from '../checkpoint/follow.js';
import { type CheckpointFlags, withCheckpointOptions } from '../checkpoint/options.js';
import { readBarrierPart, writeBarrierPart } from '../checkpoint/snapshot.js';
import type { StageCheckpointer } from '../checkpoint/stage.js';
import { assertOptionsApply, type OptionConsumer } from '../commands/applicable.js';
import { SOURCE_KINDS } from '../connectors/index.js';
import { groupSources } from '../connectors/source.js';
import { DataError, RuntimeError, UsageError } from '../errors.js';
import { type JoinType, parseJoinType, parseOn } from '../ops/join/fields.js';
import { LookupJoinOperator } from '../ops/join/lookup.js';
import { AsOfJoinOperator, IntervalJoinOperator, type Side } from '../ops/join/operator.js';
import { DEFAULT_MAX_KEY_GROUPS } from '../state/keygroup.js';
import { storeFor } from '../storage/store.js';
import type { BadRecords } from '../stream/badrecords.js';
import type { Barrier, Header, Rec, Schema } from '../stream/protocol.js';
import { runOperator } from '../stream/run.js';
import { SideOutput } from '../stream/side-output.js';
import { deferFirstSignal, interruptible } from '../stream/signals.js';
import { runTwoInputs } from '../stream/two-inputs.js';
import { readDeltaLog } from '../table/delta.js';
import { formatDuration, parseDuration } from '../time/duration.js';
import {
  assertStateDirUsable,
  type CommonOptions,
  parseCount,
  runContext,
  stageCheckpointer,
  withCommonOptions,
} from './common.js';

interface JoinFlags extends CommonOptions, CheckpointFlags {
  right: string;
  on: string;
  within?: string;
  between?: string;
  asOf?: boolean;
  lookup?: boolean;
  type: string;
  suffix: string;
  allowedLateness?: string;
  lateOutput?: string;
  onLate?: string;
  idleTimeout?: string;
  versionRetention?: string;
  refresh?: string;
  rightFormat?: string;
  state?: string;
  stateCache: string;
  maxKeyGroups: string;
}

const EVENT_OPTIONS = [
  'allowedLateness',
  'lateOutput',
  'onLate',
  'idleTimeout',
  'state',
  'stateCache',
  'maxKeyGroups',
];
/** The join modes as option consumers: a flag of another mode is a usage error (exit 2). */
const MODES: Record<'interval' | 'asof' | 'lookup', OptionConsumer> = {
  interval: { name: 'an interval join (--within/--between)', options: EVENT_OPTIONS },
  asof: { name: 'an as-of join (--as-of)', options: [...EVENT_OPTIONS, 'versionRetention'] },
  lookup: { name: 'a lookup join (--lookup)', options: ['refresh', 'rightFormat'] },
};

const LATE_HINT =
  'keep late rows with --late-output FILE, drop them knowingly with --on-late drop, or accept them with --allowed-lateness DUR';

export function joinCommand(): Command {
  const cmd = new Command('join')
    .description(
      'joins the stream on stdin with a second input: interval, as-of (temporal) or lookup join on event time',
    )
    .requiredOption(
      '--right <src>',
      'the right input: a kappa stream in a file, FIFO or process substitution (<(kappa ingest …)); with --lookup, anything kappa ingest reads (Parquet/CSV/NDJSON, local or s3://, a Delta table)',
    )
    .requiredOption(
      '--on <fields>',
      'join key: FIELD[=RIGHT_FIELD][,…] (dotted paths into the record values), e.g. origin=iata or user,session',
    )
    .option('--within <dur>', 'interval join: right.ts in [left.ts, left.ts + DUR] (= --between 0,DUR)')
    .option(
      '--between <lower,upper>',
      'interval join: right.ts in [left.ts + LOWER, left.ts + UPPER], e.g. -1h,2h',
    )
    .option('--as-of', 'temporal join: each left row joins the right version with the greatest ts <= its ts')
    .option('--lookup', 'lookup join: the right side is a finite table, loaded once; no time condition')
    .option(
      '--type <type>',
      'inner | left | right | full (outer rows null-padded; --as-of and --lookup: inner | left)',
      'inner',
    )
    .option('--suffix <s>', 'appended to a right field name that a left field has', '_right')
    .option(
      '--allowed-lateness <dur>',
      'rows this far behind the watermark still join (the output watermark is held back by as much)',
    )
    .option(
      '--late-output <path>',
      'write rows later than the allowed lateness here (a kappa stream side output)',
    )
    .option(
      '--on-late <policy>',
      'without --late-output: fail (default: exit 3 at the first late row) | drop (count and drop them)',
    )
    .option(
      '--idle-timeout <dur>',
      'leave an input without events this long (wall time) out of the watermark; never a paused input',
    )
    .option('--version-retention <dur>', '--as-of: keep right versions this much longer than needed')
    .option(
      '--refresh <dur>',
      '--lookup: reload the table this often (a Delta table: when its version changed)',
    )
    .option('--right-format <fmt>', '--lookup: format of the table (as kappa ingest --format)')
    .option('--state <dir>', 'keyed state directory (LevelDB; default: a temp dir removed on exit)')
    .option(
      '--state-cache <n>',
      'state entries (join key × side) kept in memory before spilling to LevelDB',
      '100000',
    )
    .option(
      '--max-key-groups <n>',
      'key groups of the state (murmur3 of the join key mod N)',
      String(DEFAULT_MAX_KEY_GROUPS),
    );
  withCheckpointOptions(cmd);
  withCommonOptions(cmd).addHelpText(
    'after',
    `
Give exactly one mode. The output value is the left fields merged with the right ones (a right
field whose name a left field has gets --suffix); outer rows have null for the other side's fields.
Interval join: result ts = the later of the pair; an unmatched outer row is emitted once, when its
interval closed; the output watermark is held back by the largest bound plus the allowed lateness,
so a downstream window never sees a join result as late. As-of join: result ts = the left row's.

Examples:
  kappa ingest rides.parquet --ts-field t --max-out-of-orderness 1m \\
    | kappa join --right <(kappa ingest fares.parquet --ts-field t --max-out-of-orderness 1m) \\
        --on ride_id --within 2h --type full | kappa sink rides_fares/
  kappa ingest clicks.ndjson --ts-field ts | kappa join --right ads.kappa --on ad_id --between -1h,0s
  kappa ingest trades.parquet --ts-field ts | kappa join --right <(kappa ingest quotes.parquet --ts-field ts) \\
        --on symbol --as-of --type left | kappa sink -
  kappa ingest flights.parquet --ts-field date | kappa join --right airports.csv --on origin=iata --lookup --type left | kappa sink -

Checkpoints (man kappa-join, CHECKPOINTS; man kappa-checkpoints): the source of stdin coordinates,
the source feeding --right <(…) follows it (found at its start), so one export covers both:
  export KAPPA_CHECKPOINT_DIR=/var/lib/kappa/rides
  kappa ingest rides.ndjson --ts-field ts --checkpoint-interval 10s \
    | kappa join --right <(kappa ingest fares.ndjson --ts-field ts) --on ride_id --within 2h | kappa sink rides_fares/
  # killed? rerun with KAPPA_RESUME=1; Ctrl-C stops both sources with one savepoint`,
  );
  return cmd.action(async (o: JoinFlags) => runJoin(o, cmd));
}

/** Parses a signed duration (`-1h`, `30m`, `0s`). */
function signedDuration(text: string, flag: string): number {
  const t = text.trim();
  return t.startsWith('-') ? -parseDuration(t.slice(1), flag) : parseDuration(t, flag);
}

async function runJoin(o: JoinFlags, cmd: Command): Promise<void> {
  const modes = [o.within !== undefined || o.between !== undefined, o.asOf === true, o.lookup === true];
  if (o.within !== undefined && o.between !== undefined)
    throw new UsageError('give --within or --between, not both');
  if (modes.filter(Boolean).length !== 1)
    throw new UsageError('give exactly one mode: --within DUR, --between LOWER,UPPER, --as-of or --lookup');
  const mode = modes[0] ? 'interval' : modes[1] ? 'asof' : 'lookup';
  assertOptionsApply(cmd, [MODES[mode]], Object.values(MODES));
  const on = parseOn(o.on);
  const type = parseJoinType(o.type);
  if (mode !== 'interval' && (type === 'right' || type === 'full'))
    throw new UsageError(`--type ${type}: ${MODES[mode].name} is inner or left only`);
  if (o.onLate !== undefined && o.onLate !== 'fail' && o.onLate !== 'drop')
    throw new UsageError(`--on-late: expected fail or drop, got '${o.onLate}'`);
  if (o.onLate !== undefined && o.lateOutput !== undefined)
    throw new UsageError('--on-late applies without --late-output only (late rows go to the file)');
  const { bad, progress } = runContext('join', o);
  if (mode === 'lookup') return runLookup(o, on, type as 'inner' | 'left', bad, progress);

  let lower = 0;
  let upper = 0;
  if (o.within !== undefined) upper = parseDuration(o.within, '--within');
  if (o.between !== undefined) {
    const parts = o.between.split(',');
    if (parts.length !== 2)
      throw new UsageError(`--between: expected LOWER,UPPER (e.g. -1h,2h), got '${o.between}'`);
    lower = signedDuration(parts[0], '--between lower');
    upper = signedDuration(parts[1], '--between upper');
    if (lower > upper)
      throw new UsageError(`--between: the lower bound is above the upper one in '${o.between}'`);
  }
  const lateness =
    o.allowedLateness === undefined ? 0 : parseDuration(o.allowedLateness, '--allowed-lateness');
  const idleTimeoutMs =
    o.idleTimeout === undefined ? undefined : parseDuration(o.idleTimeout, '--idle-timeout');
  const stateCache = parseCount(o.stateCache, '--state-cache')!;
  if (stateCache < 1) throw new UsageError('--state-cache must be at least 1');
  const maxKeyGroups = parseCount(o.maxKeyGroups, '--max-key-groups')!;
  if (maxKeyGroups < 1 || maxKeyGroups > 65536) throw new UsageError('--max-key-groups must be 1..65536');
  assertStateDirUsable(o.state, o);
  const ck = stageCheckpointer('join', o);
  const late =
    o.lateOutput === undefined ? undefined : await SideOutput.create(o.lateOutput, '--late-output');
  const right = openRight(o.right);
  let lateCount = 0;
  const onLate = (side: Side, r: Rec, wm: number): void => {
    lateCount++;
    if (late)
      late.record({
        ...r,
        headers: { ...(r.headers ?? {}), 'kappa-join-side': side === 0 ? 'left' : 'right' },
      });
    else if (o.onLate !== 'drop') throw lateError(side, r, wm, lateness, lateCount, o.right);
  };
  const common = {
    on,
    type,
    suffix: o.suffix,
    allowedLateness: lateness,
    onLate,
    stateDir: o.state,
    stateCache,
    maxKeyGroups,
  };
  const op =
    mode === 'interval'
      ? new IntervalJoinOperator({ ...common, lower, upper })
      : new AsOfJoinOperator({
          ...common,
          versionRetention:
            o.versionRetention === undefined ? 0 : parseDuration(o.versionRetention, '--version-retention'),
        });
  let status = 'failed';
  let follower: string | undefined;
  let undefer = () => {};
  try {
    late?.open({ kappa: 1 });
    await runTwoInputs(
      {
        open: async (l, r) => {
          const h = checkpointHeaders(l, r, o.right, ck);
          follower = r.pipeline?.follower?.run;
          const oh = await op.open(l, r);
          if (!h.pipeline) return oh;
          await ck.restore(op);
          undefer = deferFirstSignal((sig) =>
            process.stderr.write(
              `kappa join: ${sig}: waiting for the sources' savepoint (send it again to abort)\n`,
            ),
          );
          return { ...oh, pipeline: h.pipeline };
        },
        record: (s, r, out) => op.record(s, r, out),
        watermark: async (wm, out) => {
          await op.watermark(wm, out);
          await late?.flushIfFull();
        },
        barrier: async (b, out) => {
          if (!ck.active || !b.path) {
            out.barrier?.(b);
            return b;
          }
          await recordSources(b);
          const fwd = await ck.barrier(b, async () => ({ ...(await op.snapshot()), maxKeyGroups }));
          out.barrier?.(fwd);
          return fwd;
        },
        endBarrier: async (final) => {
          if (ck.active && final.path) await recordSources(final);
          return final;
        },
        complete: async (b) => {
          if (ck.active && b.path) await ck.complete(b);
        },
        end: async (out) => {
          await op.end(out);
          await late?.finish();
        },
        counters: () => op.counters(),
        close: () => op.close(),
      },
      {
        right: interruptible(right),
        rightName: o.right,
        bad,
        progress,
        maxLineBytes: o.maxLineBytes,
        idleTimeoutMs,
        // Barrier N on the left input: ask the right input's follower source for its barrier N.
        onHeld: async (side, b) => {
          const dir = ck.pipeline?.checkpointDir;
          if (side !== 0 || follower === undefined || dir === undefined || !b.path) return;
          await writeTrigger(dir, follower, { id: b.id, type: b.type ?? 'checkpoint', path: b.path });
        },
      },
    );
    status = 'done';
  } finally {
    undefer();
    // The follower removes its trigger at exit; one written after it ended goes here.
    const dir = ck.pipeline?.checkpointDir;
    if (follower !== undefined && dir !== undefined) await removeTrigger(dir, follower);
    right.destroy();
    if (status !== 'done') process.stdin.destroy();
    bad.close();
    await late?.abort();
    progress.stats.extra['peak rss'] = `${(process.resourceUsage().maxRSS / 1024).toFixed(1)} MB`;
    progress.finish(status);
  }
}

/**
 * Checks the checkpoint context of both inputs (src/checkpoint/follow.ts) and returns the left
 * header as this stage takes it: with the right source's uid among the pipeline's uids. Without
 * checkpoints both headers carry no pipeline info.
 * @throws UsageError when one input checkpoints and the other does not follow it, when the right
 *   source follows another pipeline, dir or snapshot, or its uid is taken; and for a checkpoint
 *   flag of this stage without checkpoints (StageCheckpointer.onHeader)
 */
function checkpointHeaders(l: Header, r: Header, rightName: string, ck: StageCheckpointer): Header {
  const lp = l.pipeline;
  const rp = r.pipeline;
  if (!lp) {
    if (rp)
      throw new UsageError(
        `--right ${rightName}: its source checkpoints (checkpoint dir ${rp.checkpointDir}), but the left input (stdin) does not`,
        'give both sources of the join the same checkpoint dir (export KAPPA_CHECKPOINT_DIR=DIR for the whole pipeline)',
      );
    ck.onHeader(l, true);
    return l;
  }
  if (!rp?.follower)
    throw new UsageError(
      `the left input checkpoints (checkpoint dir ${lp.checkpointDir}), but --right ${rightName} does not follow its checkpoints${rp ? ' (its source coordinates checkpoints of its own)' : ' (its stream carries no checkpoint context)'}, so a checkpoint could not cover both inputs`,
      rp
        ? 'the source of --right must write to the join directly: --right <(kappa ingest …), a FIFO or /dev/fd/N, so that it finds the join and follows'
        : 'give the source of --right the same checkpoint dir (export KAPPA_CHECKPOINT_DIR=DIR for the whole pipeline): it then follows the left source’s checkpoints; or run without checkpoints',
    );
  const trim = (u: string) => u.replace(/\/+$/, '');
  if (rp.id !== lp.id || trim(rp.checkpointDir) !== trim(lp.checkpointDir))
    throw new UsageError(
      `--right ${rightName}: its source uses checkpoint dir ${rp.checkpointDir}, the left one ${lp.checkpointDir}`,
      'every stage of a pipeline uses the same checkpoint dir: export KAPPA_CHECKPOINT_DIR once for all of them',
    );
  if ((rp.restore?.path ?? null) !== (lp.restore?.path ?? null))
    throw new UsageError(
      `--right ${rightName}: its source restored ${rp.restore?.path ?? 'nothing'}, the left one ${lp.restore?.path ?? 'nothing'}; both must restore the same snapshot`,
      'give both sources --resume (or export KAPPA_RESUME=1), or the same --from-savepoint',
    );
  const taken = rp.uids.filter((u) => lp.uids.includes(u));
  if (taken.length > 0)
    throw new UsageError(
      `--right ${rightName}: its source has the uid '${taken[0]}', which a stage of the left input has too`,
      'give the source of --right its own --uid (needed when a pipeline has more than one join)',
    );
  const merged: Header = { ...l, pipeline: { ...lp, uids: [...lp.uids, ...rp.uids] } };
  const info = ck.onHeader(merged, true);
  return { ...l, pipeline: info };
}

/**
 * Adds the follower's positions in barrier `b` (merged by the runtime) to the coordinator's part
 * `_parts/_barrier.json` of snapshot `b.path`, before the barrier is forwarded: the checkpoint's
 * `_metadata.json` then has the positions of both sources.
 * @throws RuntimeError when the coordinator's part is missing
 */
async function recordSources(b: Barrier): Promise<void> {
  const path = b.path as string;
  const part = await readBarrierPart(path);
  if (!part) throw new RuntimeError(`${path}: the left source's part of checkpoint ${b.id} is missing`);
  const have = new Set(part.sources.map((x) => x.uid));
  const extra = (b.sources ?? []).filter((x) => !have.has(x.uid));
  if (extra.length === 0) return;
  await writeBarrierPart(path, {
    ...part,
    sources: [
      ...part.sources,
      ...extra.map((x) => ({ ...x, positions: x.positions as (typeof part.sources)[number]['positions'] })),
    ],
  });
}

/** Opens the right input of an interval or as-of join (a kappa stream: file, FIFO, /dev/fd/N). */
function openRight(path: string): ReadStream {
  if (path === '-')
    throw new UsageError(
      '--right -: standard input is the left input; give the right one as a file, FIFO or <(…)',
    );
  try {
    statSync(path);
  } catch (e) {
    throw new UsageError(
      `--right ${path}: cannot open it: ${(e as Error).message}`,
      'give a kappa stream file, a FIFO or <(kappa ingest …)',
    );
  }
  const s = createReadStream(path);
  s.on('error', () => {}); // reported by the reader (readStream rethrows the stream's error)
  return s;
}

/** Reads the whole lookup table through the ingest connectors: its row values and schema. */
async function loadTable(
  src: string,
  format: string | undefined,
  bad: BadRecords,
): Promise<{ rows: unknown[]; schema?: Schema }> {
  const groups = groupSources([src], SOURCE_KINDS);
  const g = groups[0];
  if (g.kind.name.startsWith('kafka'))
    throw new UsageError(
      `--right ${src}: a lookup table must be finite (files, s3://, a Delta table), not a Kafka topic`,
    );
  const source = await g.kind.open(g.sources, { format });
  const rows: unknown[] = [];
  try {
    for await (const b of source.batches()) {
      for (let i = 0; i < b.rows.length; i++) {
        const r = b.rows[i];
        if (r === undefined) bad.report(b.where(i), b.errors?.get(i) ?? 'unreadable row', b.raw(i));
        else rows.push(r);
      }
    }
  } finally {
    await source.close();
  }
  return source.schema ? { rows, schema: source.schema } : { rows };
}

async function runLookup(
  o: JoinFlags,
  on: ReturnType<typeof parseOn>,
  type: 'inner' | 'left',
  bad: BadRecords,
  progress: ReturnType<typeof runContext>['progress'],
): Promise<void> {
  let table = await loadTable(o.right, o.rightFormat, bad);
  const build = () =>
    new LookupJoinOperator({ on, type, rows: table.rows, schema: table.schema, suffix: o.suffix });
  let op = build();
  const refreshMs = o.refresh === undefined ? undefined : parseDuration(o.refresh, '--refresh');
  if (refreshMs !== undefined && refreshMs <= 0) throw new UsageError('--refresh must be positive');
  // --refresh: reload in the background; a Delta table only when its version changed.
  let version = await deltaVersion(o.right);
  let header: Parameters<LookupJoinOperator['open']>[0] | undefined;
  let reloading = false;
  const timer =
    refreshMs === undefined
      ? undefined
      : setInterval(() => {
          if (reloading) return;
          reloading = true;
          (async () => {
            const v = await deltaVersion(o.right);
            if (v !== undefined && v === version) return;
            table = await loadTable(o.right, o.rightFormat, bad);
            version = v;
            const next = build();
            if (header) next.open(header);
            op = next;
            progress.stats.extra['table reloads'] = Number(progress.stats.extra['table reloads'] ?? 0) + 1;
          })()
            .catch((e) =>
              process.stderr.write(
                `kappa join: --refresh: reloading ${o.right} failed, keeping the loaded table: ${(e as Error).message}\n`,
              ),
            )
            .finally(() => {
              reloading = false;
            });
        }, refreshMs);
  timer?.unref();
  let status = 'failed';
  try {
    await runOperator(
      {
        open: (h) => {
          header = h;
          return op.open(h);
        },
        record: (r, out) => op.record(r, out),
        batch: (b, out, badRow) => op.batch(b, out, badRow),
        watermark: (wm, out) => op.watermark(wm, out),
        end: () => op.end(),
        counters: () => op.counters(),
      },
      { bad, progress, maxLineBytes: o.maxLineBytes, checkpoint: stageCheckpointer('join', o) },
    );
    status = 'done';
  } finally {
    if (timer) clearInterval(timer);
    bad.close();
    progress.finish(status);
  }
}

/** The Delta version of `src` when it is a Delta table, else undefined. */
async function deltaVersion(src: string): Promise<number | undefined> {
  try {
    return (await readDeltaLog(storeFor(src), src))?.version;
  } catch {
    return undefined;
  }
}

/** The error of the default late policy: the first late row fails the run (exit 3). */
function lateError(
  side: Side,
  r: Rec,
  wm: number,
  lateness: number,
  count: number,
  rightName: string,
): DataError {
  const input = side === 0 ? 'stdin (left)' : `${rightName} (right)`;
  const where = r.prov?.source
    ? ` (${r.prov.source}${r.prov.partition !== undefined ? ` partition ${r.prov.partition}` : ''}${r.prov.offset !== undefined ? ` offset ${r.prov.offset}` : ''})`
    : '';
  const iso = (t: number) => (Number.isFinite(t) ? new Date(t).toISOString() : String(t));
  return new DataError(
    `late row on ${input}${where}: ts ${r.ts} (${iso(r.ts)}) is behind the join's watermark ${iso(wm)} by more than the allowed lateness (${lateness === 0 ? '0' : formatDuration(lateness)}); ${count} late row(s) so far`,
    LATE_HINT,
  );
}

export type { JoinType };
