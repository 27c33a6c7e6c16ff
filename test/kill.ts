/**
 * Kill harness for the checkpoint acceptance tests (issue 9, acceptance 1 and 2): runs a pipeline
 * of kappa stages as separate processes joined by pipes (as a shell would), SIGKILLs one stage
 * (chosen at random) at a random moment, waits until every stage has exited, and reruns the whole
 * pipeline with `KAPPA_RESUME=1` — `kills` times, or until a run reaches the end of the input
 * before its kill — and then runs it once more to its end.
 *
 * Randomness comes from a seeded PRNG (mulberry32), so a failing seed replays the same choices
 * (the moments still depend on the machine's speed). Every run is bounded in time: a stage still
 * alive `exitTimeoutMs` after a kill (it should see end of input or a broken pipe), a run whose
 * kill waits for a checkpoint that does not complete within `runTimeoutMs`, or a final run longer
 * than `runTimeoutMs` fails the harness with the stages' stderr.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../bench/gen.js';
import { KAPPA, ROOT } from './helpers.js';

/** One stage: the kappa arguments (after `kappa`). */
export type StageArgs = string[];

/** What happened to one stage in one run. */
export interface StageExit {
  /** The stage's first two arguments, e.g. `window --key`. */
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The tail of its stderr (last 4 KiB). */
  stderr: string;
}

/** One run of the pipeline. */
export interface RunRecord {
  run: number;
  /** The stage index killed, or undefined (the run was let finish, or ended before the kill). */
  killed?: number;
  /** ms after start when SIGKILL was sent. */
  killAtMs?: number;
  /** Wall time of the run, ms. */
  ms: number;
  /** The checkpoint id the source said it resumed from (its stderr), or undefined. */
  resumedFrom?: number;
  exits: StageExit[];
}

export interface KillOptions {
  stages: StageArgs[];
  /**
   * Side stages: each one writes its stdout into the FIFO `fifo` (made by the caller; give the
   * stage that reads it `--right FIFO`), e.g. the right input of a join. (A FIFO, not a pipe from
   * here: Node's child stdio is a socket, which `/dev/fd/N` cannot open.) They are killed at random
   * like the others; their exits follow the stages' in `StageExit[]`.
   */
  sideStages?: { fifo: string; args: StageArgs }[];
  /** stdin of the first stage: a file path, or undefined for none. */
  stdinFile?: string;
  /** Environment added to every stage (KAPPA_CHECKPOINT_DIR …); KAPPA_RESUME=1 is always set. */
  env: Record<string, string>;
  /** Number of SIGKILLs that hit a live stage before the final run (at least this many). */
  kills: number;
  seed: number;
  /**
   * The kill moment is uniform in [minKillMs, maxKillMs] after the stages were spawned — or, with
   * `afterCheckpoint`, that many ms after the first checkpoint this run completed (so every run
   * makes progress and resumes from a checkpoint, however fast or slow the machine is).
   */
  minKillMs: number;
  maxKillMs: number;
  /** The pipeline's checkpoint dir: kill relative to a new complete checkpoint in it (see above). */
  afterCheckpoint?: string;
  /** Bound of the final (uninterrupted) run, ms. */
  runTimeoutMs: number;
  /** How long the other stages get to exit after a kill, ms (default 60 s). */
  exitTimeoutMs?: number;
  /** Bound of the whole harness, ms: no new killed run starts after it (default: unbounded). */
  deadlineMs?: number;
  /** Called after each run (for logging). */
  onRun?: (r: RunRecord) => void;
}

/** The outcome: every run, the final one last. */
export interface KillOutcome {
  runs: RunRecord[];
  /** SIGKILLs that hit a live stage; fewer than asked when the input ran out first. */
  kills: number;
}

const tail = (chunks: Buffer[]): string => {
  const s = Buffer.concat(chunks).toString('utf8');
  return s.length > 4096 ? s.slice(-4096) : s;
};

/** Spawns the stages, stdout of each piped into the next; the last one's stdout is discarded. */
function spawnPipeline(o: KillOptions): {
  procs: ChildProcess[];
  errs: Buffer[][];
  done: Promise<StageExit[]>;
} {
  const env = {
    ...process.env,
    ...o.env,
    KAPPA_RESUME: '1',
    PATH: `${join(ROOT, 'bin')}:${process.env.PATH}`,
  };
  const procs: ChildProcess[] = [];
  const errs: Buffer[][] = [];
  const sideProcs: ChildProcess[] = [];
  const sideErrs: Buffer[][] = [];
  const names = o.stages.map((a) => a.slice(0, 2).join(' '));
  const sideNames: string[] = [];
  const collect = (p: ChildProcess): Buffer[] => {
    const e: Buffer[] = [];
    let size = 0;
    p.stderr?.on('data', (d: Buffer) => {
      e.push(d);
      size += d.length;
      while (size > 65536 && e.length > 1) size -= (e.shift() as Buffer).length;
    });
    return e;
  };
  const inFd = o.stdinFile === undefined ? undefined : openSync(o.stdinFile, 'r');
  o.stages.forEach((args, i) => {
    const stdin = i === 0 ? (inFd ?? 'ignore') : (procs[i - 1].stdout ?? 'ignore');
    const p = spawn(process.execPath, [KAPPA, ...args], {
      cwd: ROOT,
      env,
      stdio: [stdin, i === o.stages.length - 1 ? 'ignore' : 'pipe', 'pipe'],
    });
    // As a shell does: the parent keeps no end of a pipe between two stages, so that the writer
    // sees a broken pipe once the reader dies.
    if (i > 0) procs[i - 1].stdout?.destroy();
    procs.push(p);
    errs.push(collect(p));
  });
  for (const side of o.sideStages ?? []) {
    // bash opens the FIFO for writing (waiting for its reader), then becomes the kappa process.
    const sp = spawn(
      'bash',
      ['-c', 'exec "$0" "$@" > "$KAPPA_SIDE_FIFO"', process.execPath, KAPPA, ...side.args],
      {
        cwd: ROOT,
        env: { ...env, KAPPA_SIDE_FIFO: side.fifo },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    sideProcs.push(sp);
    sideErrs.push(collect(sp));
    sideNames.push(`${side.args.slice(0, 2).join(' ')} (side)`);
  }
  procs.push(...sideProcs);
  errs.push(...sideErrs);
  if (inFd !== undefined) closeSync(inFd);
  names.push(...sideNames);
  const done = Promise.all(
    procs.map(
      (p, i) =>
        new Promise<StageExit>((res) => {
          const name = names[i];
          // 'exit' and the end of stderr, not 'close': a stdout handed to the next stage as its
          // stdin is never closed here, so 'close' would not come.
          let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
          let errDone = p.stderr === null;
          const settle = () => {
            if (exit && errDone) res({ name, ...exit, stderr: tail(errs[i]) });
          };
          p.on('exit', (code, signal) => {
            exit = { code, signal };
            settle();
          });
          p.stderr?.on('close', () => {
            errDone = true;
            settle();
          });
        }),
    ),
  );
  return { procs, errs, done };
}

/** The checkpoint id in the source's "resuming from checkpoint N" note, if any. */
function resumedFrom(exits: StageExit[]): number | undefined {
  const m = /resuming from checkpoint (\d+)/.exec(exits[0]?.stderr ?? '');
  return m ? Number(m[1]) : undefined;
}

function describeExits(exits: StageExit[]): string {
  return exits.map((x) => `--- ${x.name}: exit ${x.code ?? x.signal}\n${x.stderr.trimEnd()}`).join('\n');
}

/** Waits for `p` at most `ms`; on time-out kills what is left and throws with `what`. */
async function bounded(
  p: Promise<StageExit[]>,
  procs: ChildProcess[],
  errs: Buffer[][],
  ms: number,
  what: () => string,
): Promise<StageExit[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((res) => {
    timer = setTimeout(res, ms);
  });
  try {
    return await boundedBy(p, procs, errs, late, () => `${what()} (after ${ms} ms)`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `p`, unless `late` resolves first: then SIGKILLs the stages still alive and throws with `what`
 * and their stderr.
 */
async function boundedBy(
  p: Promise<StageExit[]>,
  procs: ChildProcess[],
  errs: Buffer[][],
  late: Promise<void>,
  what: () => string,
): Promise<StageExit[]> {
  const r = await Promise.race([p, late.then(() => 'late' as const)]);
  if (r !== 'late') return r;
  const alive = procs
    .map((c, i) => (c.exitCode === null && c.signalCode === null ? i : -1))
    .filter((i) => i >= 0);
  const report = alive
    .map((i) => `--- stage ${i} (${procs[i].pid}) still running:\n${tail(errs[i])}`)
    .join('\n');
  for (const i of alive) procs[i].kill('SIGKILL');
  await p;
  throw new Error(`${what()}\n${report}`);
}

/** The id of the newest complete checkpoint (`chk-N/_metadata.json`) in `dir`, or 0. */
function newestComplete(dir: string): number {
  let max = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const n of names) {
    const m = /^chk-(\d+)$/.exec(n);
    if (m && Number(m[1]) > max && existsSync(join(dir, n, '_metadata.json'))) max = Number(m[1]);
  }
  return max;
}

/**
 * Kills and resumes the pipeline (see the module doc), then runs it to its end.
 * @returns every run; the last is the final run, whose stages all exited 0
 * @throws Error when a stage outlives a kill by `exitTimeoutMs`, the final run times out or a
 *   stage of the final run fails (the message carries every stage's stderr)
 */
export async function killAndResume(o: KillOptions): Promise<KillOutcome> {
  const rnd = mulberry32(o.seed);
  const runs: RunRecord[] = [];
  const t0 = Date.now();
  let kills = 0;
  while (kills < o.kills && (o.deadlineMs === undefined || Date.now() - t0 < o.deadlineMs)) {
    const killAtMs = Math.round(o.minKillMs + rnd() * (o.maxKillMs - o.minKillMs));
    const pick = rnd();
    const start = Date.now();
    const baseline = o.afterCheckpoint ? newestComplete(o.afterCheckpoint) : 0;
    const { procs, errs, done } = spawnPipeline(o);
    let killed: number | undefined;
    let killedAt: number | undefined;
    const kill = () => {
      const alive = procs
        .map((c, i) => (c.exitCode === null && c.signalCode === null ? i : -1))
        .filter((i) => i >= 0);
      if (alive.length === 0) return;
      killed = alive[Math.floor(pick * alive.length)];
      killedAt = Date.now() - start;
      procs[killed].kill('SIGKILL');
    };
    let timer: NodeJS.Timeout | undefined;
    const exitTimeoutMs = o.exitTimeoutMs ?? 60_000;
    // Every stage must be gone soon after the kill (end of input or a broken pipe reaches it):
    // `exitTimeoutMs` from the kill. With `afterCheckpoint` the kill waits for a checkpoint, which
    // a loaded machine may take long to complete: until then the bound is `runTimeoutMs`.
    let late: () => void = () => {};
    const lateP = new Promise<void>((res) => {
      late = res;
    });
    let lateTimer = setTimeout(late, o.afterCheckpoint ? o.runTimeoutMs : killAtMs + exitTimeoutMs);
    const killLater = () => {
      timer = setTimeout(kill, killAtMs);
      clearTimeout(lateTimer);
      lateTimer = setTimeout(late, killAtMs + exitTimeoutMs);
    };
    const poll = o.afterCheckpoint
      ? setInterval(() => {
          if (newestComplete(o.afterCheckpoint as string) <= baseline) return;
          clearInterval(poll);
          killLater();
        }, 25)
      : undefined;
    if (!poll) timer = setTimeout(kill, killAtMs);
    const exits = await boundedBy(
      done,
      procs,
      errs,
      lateP,
      () =>
        `run ${runs.length + 1}: ${killed === undefined ? 'no kill (no new complete checkpoint) and' : `a stage outlived the kill of stage ${killed}:`} a stage still ran after ${Date.now() - start} ms`,
    );
    clearTimeout(lateTimer);
    clearTimeout(timer);
    clearInterval(poll);
    const rec: RunRecord = {
      run: runs.length + 1,
      resumedFrom: resumedFrom(exits),
      killed,
      killAtMs: killedAt,
      ms: Date.now() - start,
      exits,
    };
    if (killed !== undefined) {
      if (exits[killed].signal === 'SIGKILL') kills++;
    } else if (exits.some((x) => x.code !== 0))
      throw new Error(`run ${rec.run} failed without a kill:\n${describeExits(exits)}`);
    runs.push(rec);
    o.onRun?.(rec);
    // The pipeline reached the end of its input before the kill: no more kills while it works.
    if (killed === undefined) break;
  }
  // The final run: to the end, or (when a run above already finished) a rerun that restores the
  // final checkpoint and must add nothing.
  const start = Date.now();
  const { procs, errs, done } = spawnPipeline(o);
  const exits = await bounded(done, procs, errs, o.runTimeoutMs, () => 'the final run did not finish');
  const rec: RunRecord = {
    run: runs.length + 1,
    resumedFrom: resumedFrom(exits),
    ms: Date.now() - start,
    exits,
  };
  runs.push(rec);
  o.onRun?.(rec);
  if (exits.some((x) => x.code !== 0)) throw new Error(`the final run failed:\n${describeExits(exits)}`);
  return { runs, kills };
}
