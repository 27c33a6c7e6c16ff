/**
 * The table sink's committer: makes finished part files part of the table atomically for Delta
 * readers, visible to glob readers right after, and recoverable after a crash at any point
 * (modelled on Flink's FileSink: in-progress -> pending -> finished, with pending files recorded so
 * that recovery can commit them). See docs in kappa-sink(1), section "Commit protocol".
 *
 * Layout under the table root (hidden from readers: `_` prefix):
 * - `_kappa/runs/RUNID.json`       one per live run: `{runId, host, pid, pidStart, started, updated}`;
 *                                  written before the run creates any file, rewritten every minute
 *                                  (`updated`, a lease), deleted when it ends (commit or abort).
 * - `_kappa/pending/RUNID-N.json`  one per commit in flight (the serialisable pending-file record):
 *                                  `{runId, commitId, baseVersion, files: [{rel, record}]}`.
 * Part files carry the run id in their name (`part-NNNNN-RUNID.…`), so their in-progress copies
 * (hidden local `.part-….inprogress-HEX` files, open S3 multipart uploads) can be attributed.
 *
 * Commit of N finished files (all steps idempotent for recovery):
 *  1. finish every file: bytes durable (fsync; last S3 part uploaded), still invisible (up to
 *     IO_CONCURRENCY files at a time; every one done before step 2);
 *  2. write the pending record `_kappa/pending/RUNID-N.json`;
 *  3. put-if-absent the Delta log version (with conflict checks; commitInfo carries
 *     `kappa.commitId` = RUNID-N) — THE commit point: Delta readers see the new version;
 *  4. publish every file under its final name (local rename; S3 CompleteMultipartUpload) — glob
 *     readers see the rows (the first file, then up to IO_CONCURRENCY at a time);
 *  5. delete the pending record.
 * Readers never see an uncommitted row: a glob reader sees a file only after step 3, a Delta reader
 * only through the log. Between steps 3 and 4 (one rename per file) a glob reader still sees the
 * previous commit and a Delta reader that opens a file not yet renamed fails loudly; neither ever
 * returns rows that are later taken back. (Renaming before the log, the other order, would show
 * glob readers rows that a crash then leaves uncommitted.)
 *
 * Recovery, by the next `kappa sink` into the table, before it writes anything: a run is dead when
 * its marker names this host and its pid no longer exists (a pid reused by another process is told
 * apart by its start time), or, for a run on another host, when its marker was not renewed for
 * the lease time (`KAPPA_RUN_LEASE`, default 1h; a fresh one is left alone with a warning). A run checks that its own marker still exists right before each
 * log write and fails if another writer declared it dead. For each dead run (and for files of runs without any marker):
 *  - a pending record whose commitId is in a log version after its baseVersion is rolled forward
 *    (step 4 finished), otherwise discarded (its files deleted / uploads aborted);
 *  - every in-progress file of the run is deleted (S3: its multipart upload aborted);
 *  - its marker is deleted.
 * In-progress files and records are listed before the markers, so a run that starts meanwhile
 * (marker first, then files) is never mistaken for a dead one.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { RuntimeError } from '../../errors.js';
import {
  IO_CONCURRENCY,
  joinUri,
  mapLimit,
  type ObjectStore,
  type PendingFile,
  type PendingRecord,
} from '../../storage/store.js';
import { parseDuration } from '../../time/duration.js';
import {
  checkpointIfDue,
  commitActions,
  commitIdOf,
  type DeltaAction,
  type DeltaAdd,
  type DeltaSnapshot,
  encodeDeltaPath,
  readCommit,
  type WinnerCheck,
} from '../delta.js';

/** Hidden directory of kappa's own commit bookkeeping below a table root. */
export const KAPPA_DIR = '_kappa';

/** Run marker, `_kappa/runs/RUNID.json`. */
export interface RunMarker {
  runId: string;
  host: string;
  pid: number;
  /** The process's start time in clock ticks since boot (Linux), to tell a reused pid apart. */
  pidStart?: number;
  /** Epoch ms. */
  started: number;
  /** Epoch ms of the last renewal. */
  updated?: number;
}

/** The marker of this process's run `runId`, started and renewed now. */
function newRunMarker(runId: string): RunMarker {
  const now = Date.now();
  return {
    runId,
    host: hostname(),
    pid: process.pid,
    pidStart: processStart(process.pid),
    started: now,
    updated: now,
  };
}

/** How long a run marker stays valid without renewal: `KAPPA_RUN_LEASE` (a duration), default 1h. */
function leaseMs(): number {
  const v = process.env.KAPPA_RUN_LEASE;
  return v ? parseDuration(v, 'KAPPA_RUN_LEASE') : 3_600_000;
}

/** Marker renewal interval (ms). */
const RENEW_MS = 60_000;

/** Pending-commit record, `_kappa/pending/COMMITID.json`. */
export interface PendingCommit {
  runId: string;
  /** `RUNID-N`, also in the commit's `commitInfo` as `kappa.commitId`. */
  commitId: string;
  /** The log version the commit was computed against; the commit lands after it. */
  baseVersion: number;
  /** Files by path relative to the table root, with their store records. */
  files: { rel: string; record: PendingRecord }[];
}

/** One finished part file handed to `commit`. */
export interface CommitFile {
  rel: string;
  pending: PendingFile;
  partitionValues: Record<string, string | null>;
  /** Delta stats JSON string. */
  stats: string;
}

/** What `recover` did, for the summary line. */
export interface Recovery {
  rolledForward: number;
  discarded: number;
  inProgressRemoved: number;
  /** Runs on other hosts whose leftovers were not touched. */
  foreignRuns: string[];
}

/** Test hook: `KAPPA_TEST_CRASH_AT=<point>` kills the process with SIGKILL at that step. */
export function crashPoint(point: string): void {
  if (process.env.KAPPA_TEST_CRASH_AT === point) process.kill(process.pid, 'SIGKILL');
}

/**
 * Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat, proc(5)), or
 * undefined where /proc is not available. Tells a reused pid from the run's own process.
 */
function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are plain.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]);
  } catch {
    return undefined;
  }
}

/** True when the marker's process exists on this host (same pid and, where known, same start time). */
function alive(m: RunMarker): boolean {
  try {
    process.kill(m.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (m.pidStart === undefined) return true;
  const start = processStart(m.pid);
  return start === undefined || start === m.pidStart;
}

/**
 * True when the run of marker `m` may still be running: on this host, its process exists (same pid
 * and start time); on another host, its marker was renewed within the lease (`KAPPA_RUN_LEASE`).
 */
export function runIsLive(m: RunMarker, now = Date.now()): boolean {
  if (m.host === hostname()) return alive(m);
  return now - (m.updated ?? m.started) <= leaseMs();
}

/**
 * A run marker object at `uri` for one run, renewed every minute while the run lives (the lease
 * that `runIsLive` checks for runs on other hosts). Used by the single-file sink; the committer
 * keeps its own under `_kappa/runs/`.
 */
export class RunMarkerFile {
  private marker: RunMarker | undefined;
  private renew: NodeJS.Timeout | undefined;
  private renewing: Promise<unknown> | undefined;

  constructor(
    private readonly store: ObjectStore,
    readonly uri: string,
    readonly runId: string,
  ) {}

  /** Writes the marker and starts renewing it. */
  async start(): Promise<void> {
    this.marker = newRunMarker(this.runId);
    await this.store.put(this.uri, JSON.stringify(this.marker));
    const m = this.marker;
    this.renew = setInterval(() => {
      m.updated = Date.now();
      this.renewing = this.store.put(this.uri, JSON.stringify(m)).catch(() => {});
    }, RENEW_MS);
    this.renew.unref();
  }

  /** Stops renewing and deletes the marker if this run wrote it (no error if it is gone). */
  async stop(): Promise<void> {
    clearInterval(this.renew);
    this.renew = undefined;
    if (!this.marker) return;
    this.marker = undefined;
    await this.renewing; // a renewal in flight must not write the marker back after the delete
    await this.store.delete(this.uri);
  }
}

/** The run id in a part file name `part-NNNNN-RUNID.ext`, or undefined. */
export function runIdOfPart(uri: string): string | undefined {
  return /(?:^|\/)part-\d+-([0-9a-f]{16})\.[^/]*$/.exec(uri)?.[1];
}

export async function readJson<T>(store: ObjectStore, uri: string): Promise<T | undefined> {
  try {
    return JSON.parse(new TextDecoder().decode(await store.read(uri))) as T;
  } catch {
    return undefined;
  }
}

async function listOrEmpty(store: ObjectStore, root: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of store.list(root)) out.push(e.uri);
  } catch {
    // missing directory
  }
  return out;
}

/** Commits finished files of one run into the Delta table at `root`; recovers crashed runs. */
export class Committer {
  private seq = 0;
  private markerWritten = false;
  private marker: RunMarker | undefined;
  private renew: NodeJS.Timeout | undefined;
  /** The commit in flight, if any: once its log version exists it must be rolled forward, not aborted. */
  private inFlight: { pending: PendingCommit; logged: boolean } | undefined;
  /** A Delta log checkpoint is written after committing every version that is a multiple of this. */
  checkpointInterval = 10;

  constructor(
    private readonly store: ObjectStore,
    private readonly root: string,
    readonly runId: string,
  ) {}

  private markerUri(runId: string): string {
    return joinUri(this.root, KAPPA_DIR, 'runs', `${runId}.json`);
  }

  private recordUri(commitId: string): string {
    return joinUri(this.root, KAPPA_DIR, 'pending', `${commitId}.json`);
  }

  /**
   * Repairs what crashed runs left behind (see the module comment). Call before `start`.
   * @throws RuntimeError when a rolled-forward file cannot be published
   */
  async recover(): Promise<Recovery> {
    const res: Recovery = { rolledForward: 0, discarded: 0, inProgressRemoved: 0, foreignRuns: [] };
    // Listed before the markers: see the module comment.
    const inProgress = [];
    try {
      for await (const f of this.store.listInProgress(this.root)) inProgress.push(f);
    } catch {
      // no table yet
    }
    const records = await listOrEmpty(this.store, joinUri(this.root, KAPPA_DIR, 'pending'));
    const markers = new Map<string, RunMarker | undefined>();
    for (const uri of await listOrEmpty(this.store, joinUri(this.root, KAPPA_DIR, 'runs'))) {
      const id = /([^/]+)\.json$/.exec(uri)?.[1];
      if (id) markers.set(id, await readJson<RunMarker>(this.store, uri));
    }
    const host = hostname();
    const lease = leaseMs();
    const now = Date.now();
    const dead = (runId: string): boolean => {
      if (!markers.has(runId)) return true;
      const m = markers.get(runId);
      if (!m) return true; // unreadable marker: written by a run that died while writing it
      if (m.host === host) return !alive(m);
      if (now - (m.updated ?? m.started) > lease) return true;
      if (!res.foreignRuns.includes(`${runId} on ${m.host}`)) res.foreignRuns.push(`${runId} on ${m.host}`);
      return false;
    };
    for (const uri of records) {
      const rec = await readJson<PendingCommit>(this.store, uri);
      if (!rec) {
        await this.store.delete(uri);
        continue;
      }
      if (!dead(rec.runId)) continue;
      const files = rec.files.map((f) => ({ rel: f.rel, record: this.rebase(f.rel, f.record) }));
      if ((await this.committedAt(rec)) !== undefined) {
        for (const f of files) await this.store.publish(f.record);
        res.rolledForward++;
      } else {
        for (const f of files) await this.store.discard(f.record);
        res.discarded++;
      }
      await this.store.delete(uri);
    }
    for (const f of inProgress) {
      const runId = runIdOfPart(f.uri);
      if (runId === undefined || !dead(runId)) continue;
      await f.discard();
      res.inProgressRemoved++;
    }
    for (const runId of markers.keys()) if (dead(runId)) await this.store.delete(this.markerUri(runId));
    return res;
  }

  /** A record's files under this root (the table may have been reached by another path). */
  private rebase(rel: string, r: PendingRecord): PendingRecord {
    const target = joinUri(this.root, rel);
    if (r.store === 'file') {
      const name = r.tmp.slice(r.tmp.lastIndexOf('/') + 1);
      const dir = target.slice(0, target.lastIndexOf('/') + 1);
      return { ...r, target, tmp: `${dir}${name}` };
    }
    return { ...r, uri: target };
  }

  /** The log version after the record's base that carries its commitId, or undefined. */
  private async committedAt(rec: PendingCommit): Promise<number | undefined> {
    for (let v = rec.baseVersion + 1; ; v++) {
      const actions = await readCommit(this.store, this.root, v);
      if (!actions) return undefined;
      if (commitIdOf(actions) === rec.commitId) return v;
    }
  }

  /** True while a commit's log version is written but its files are not all published yet. */
  get logged(): boolean {
    return this.inFlight?.logged === true;
  }

  /** Writes this run's marker (and renews it every minute); call before creating any file. */
  async start(): Promise<void> {
    this.marker = newRunMarker(this.runId);
    await this.store.put(this.markerUri(this.runId), JSON.stringify(this.marker));
    this.markerWritten = true;
    this.renew = setInterval(() => {
      if (!this.marker || !this.markerWritten) return;
      this.marker.updated = Date.now();
      this.store.put(this.markerUri(this.runId), JSON.stringify(this.marker)).catch(() => {});
    }, RENEW_MS);
    this.renew.unref();
  }

  /** @throws RuntimeError when another writer removed this run's marker (declared it dead) */
  private async checkMarker(): Promise<void> {
    if (this.markerWritten && !(await this.store.stat(this.markerUri(this.runId))))
      throw new RuntimeError(
        `${this.root}: another writer declared this run (${this.runId}) dead (its marker ${this.markerUri(this.runId)} is gone: not renewed within KAPPA_RUN_LEASE?) and removed its files; nothing of this commit was written`,
        'run the sink again; raise KAPPA_RUN_LEASE if runs stall longer than it',
      );
  }

  /**
   * Commits `files` in one new log version after `snapshot.version` (steps 1-5 of the module
   * comment). `actions(adds)` builds the version's actions around the add actions; `commitInfo`
   * gets `kappa.commitId` here. `check` is passed to commitActions (conflicts with winning commits).
   * @returns the version written
   * @throws RuntimeError on a conflict or storage failure; nothing of the commit is visible then
   */
  async commit(
    snapshot: DeltaSnapshot,
    files: CommitFile[],
    actions: (adds: DeltaAdd[]) => DeltaAction[],
    check?: WinnerCheck,
  ): Promise<number> {
    // Step 1 for IO_CONCURRENCY files at a time (fsync and close overlap); all durable before step 2.
    const recorded = await mapLimit(files, IO_CONCURRENCY, async (f) => ({
      rel: f.rel,
      record: await f.pending.finish(),
    }));
    const commitId = `${this.runId}-${this.seq++}`;
    const pending: PendingCommit = {
      runId: this.runId,
      commitId,
      baseVersion: snapshot.version,
      files: recorded,
    };
    await this.store.put(this.recordUri(commitId), JSON.stringify(pending));
    this.inFlight = { pending, logged: false };
    crashPoint('before-log');
    const now = Date.now();
    const adds: DeltaAdd[] = files.map((f, i) => ({
      path: encodeDeltaPath(f.rel),
      partitionValues: f.partitionValues,
      size: recorded[i].record.bytes,
      modificationTime: now,
      dataChange: true,
      stats: f.stats,
    }));
    const all = actions(adds).map((a) =>
      'commitInfo' in a ? { commitInfo: { ...a.commitInfo, 'kappa.commitId': commitId } } : a,
    );
    let version: number;
    try {
      await this.checkMarker();
      version = await commitActions(this.store, this.root, snapshot, all, commitId, check);
    } catch (e) {
      // A storage error may hide a write that happened (a lost response): look before discarding.
      const landed = await this.committedAt(pending).catch(() => undefined);
      if (landed === undefined) {
        await this.discardInFlight();
        throw e;
      }
      version = landed;
    }
    this.inFlight.logged = true;
    crashPoint('after-log');
    await this.publishInFlight();
    await checkpointIfDue(this.store, this.root, version, this.checkpointInterval);
    return version;
  }

  private async publishInFlight(): Promise<void> {
    const f = this.inFlight;
    if (!f) return;
    // The first file alone (the crash test's point between two renames), then the rest
    // IO_CONCURRENCY at a time; the record is deleted only after every file is published.
    const [head, ...rest] = f.pending.files;
    if (head) {
      await this.store.publish(head.record);
      crashPoint('mid-rename');
    }
    await mapLimit(rest, IO_CONCURRENCY, (x) => this.store.publish(x.record));
    await this.store.delete(this.recordUri(f.pending.commitId));
    this.inFlight = undefined;
  }

  private async discardInFlight(): Promise<void> {
    const f = this.inFlight;
    if (!f) return;
    this.inFlight = undefined;
    await mapLimit(f.pending.files, IO_CONCURRENCY, (x) => this.store.discard(x.record).catch(() => {}));
    await this.store.delete(this.recordUri(f.pending.commitId)).catch(() => {});
  }

  /**
   * Ends the run: finishes a commit whose log version exists (it is committed: roll forward) or
   * discards one that has none, then deletes the run marker. Used by both a clean end and abort.
   */
  async close(): Promise<void> {
    if (this.inFlight?.logged) await this.publishInFlight();
    else await this.discardInFlight();
    clearInterval(this.renew);
    if (this.markerWritten) {
      await this.store.delete(this.markerUri(this.runId));
      this.markerWritten = false;
    }
  }
}
