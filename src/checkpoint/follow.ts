/**
 * Checkpoints through a two-input join (man kappa-checkpoints.7, "TWO-INPUT JOINS"): the source
 * of the join's left input (its stdin) is the pipeline's checkpoint coordinator, as in any
 * pipeline; the source feeding `--right` is a **follower**. A follower
 *
 * - is decided at start, automatically: a source stage with a checkpoint dir whose stdout (a pipe
 *   or FIFO) is read by a `kappa join` on a descriptor other than its stdin (`--right <(…)`,
 *   `--right /dev/fd/N`, `--right FIFO`) follows (`isJoinRightInput`, Linux /proc, as the stream
 *   format negotiation in stream/negotiate.ts). Anything else coordinates;
 * - restores from the same snapshot as the coordinator (both pick the newest complete checkpoint,
 *   or the same `--from-savepoint`; the join checks that they agree), each source its own position;
 * - puts `pipeline.follower = {run}` in its header (a fresh uuid per run) and never starts a
 *   checkpoint itself: when barrier N arrives on the join's left input, the join writes the trigger
 *   `<checkpointDir>/_follow/<run>.json` = `{id, type, path}` (`writeTrigger`) and holds the left
 *   input; the follower polls that file every `TRIGGER_POLL_MS` (between its batches) and emits
 *   barrier N (a savepoint: barrier N, then the stop line) carrying its own positions. The join
 *   aligns both barriers N, adds the follower's positions to the checkpoint's `_parts/_barrier.json`
 *   and forwards one barrier: one epoch for the sink. A trigger name unique to the run means a
 *   trigger file left by a killed run is never mistaken for a current one.
 * - ignores `--checkpoint-interval`, `--stop-at`, `--savepoint-at-end` (usage errors): the
 *   coordinator decides. A SIGINT/SIGTERM to the process group reaches both sources: the follower
 *   defers it and waits for the coordinator's savepoint barrier (a second signal aborts).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { joinUri, storeFor } from '../storage/store.js';
import { kappaCommandOf } from '../stream/negotiate.js';

/** How often (ms) a follower looks for a trigger. */
export const TRIGGER_POLL_MS = 50;

/** What the join asks a follower for: barrier `id` of `type` at snapshot `path`. */
export interface FollowTrigger {
  id: number;
  type: 'checkpoint' | 'savepoint';
  path: string;
}

/** The trigger file of follower run `run` below checkpoint dir `dir`. */
export function triggerUri(dir: string, run: string): string {
  return joinUri(dir, '_follow', `${run}.json`);
}

/** Writes (overwrites) the trigger of follower run `run`: the join wants barrier `t.id`. */
export async function writeTrigger(dir: string, run: string, t: FollowTrigger): Promise<void> {
  const uri = triggerUri(dir, run);
  await storeFor(uri).put(uri, `${JSON.stringify(t)}\n`);
}

/**
 * Reads the trigger of follower run `run`, or undefined when there is none yet (or it is being
 * written: a torn read is retried at the next poll).
 */
export async function readTrigger(dir: string, run: string): Promise<FollowTrigger | undefined> {
  const uri = triggerUri(dir, run);
  const store = storeFor(uri);
  try {
    if (!(await store.stat(uri))) return undefined;
    const t = JSON.parse(Buffer.from(await store.read(uri)).toString('utf8')) as Partial<FollowTrigger>;
    if (typeof t.id !== 'number' || typeof t.path !== 'string') return undefined;
    return { id: t.id, type: t.type === 'savepoint' ? 'savepoint' : 'checkpoint', path: t.path };
  } catch {
    return undefined;
  }
}

/** Deletes the trigger of follower run `run` (at the follower's exit; no error when absent). */
export async function removeTrigger(dir: string, run: string): Promise<void> {
  const uri = triggerUri(dir, run);
  try {
    await storeFor(uri).delete(uri);
  } catch {}
}

/**
 * True when this process's stdout is read by a `kappa join` on a descriptor other than 0: we feed
 * its `--right` input. Scans /proc (Linux) for the process holding our stdout pipe or FIFO open for
 * reading; waits up to `waitMs` while that process still runs a shell or `env` before exec'ing
 * node. False on other systems, for a file or terminal, or any other reader.
 */
export function isJoinRightInput(waitMs = 2000): boolean {
  let link: string;
  try {
    link = readlinkSync('/proc/self/fd/1');
  } catch {
    return false;
  }
  if (!link.startsWith('pipe:[') && !link.startsWith('/')) return false;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const v = readerVerdict(link);
    if (v !== 'not yet') return v;
    if (Date.now() >= deadline) return false;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
}

/** true: a kappa join reads `link` on fd ≠ 0; false: no such reader; 'not yet': a shell reads it. */
function readerVerdict(link: string): boolean | 'not yet' {
  const self = String(process.pid);
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d) && d !== self);
  } catch {
    return false;
  }
  let pending = false;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    let readsOn: string | undefined;
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== link) continue;
        const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1');
        const flags = Number.parseInt(/flags:\s*([0-7]+)/.exec(info)?.[1] ?? '1', 8);
        if ((flags & 3) !== 0) continue;
        readsOn = fd;
        if (fd !== '0') break;
      } catch {}
    }
    if (readsOn === undefined) continue;
    const c = kappaCommandOf(pid);
    if (c === 'not yet') pending = true;
    else if (c === 'join' && readsOn !== '0') return true;
  }
  return pending ? 'not yet' : false;
}
